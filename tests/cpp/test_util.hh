/*
 * What the C++ tests share: a tiny check macro that counts instead of
 * aborting (so one run reports every failure), and a waiter that blocks on
 * a condition with a deadline (tests never sleep and then assert).
 */
#ifndef WSEMBED_TEST_UTIL_HH
#define WSEMBED_TEST_UTIL_HH

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

namespace test {

inline std::atomic<int> &failures() {
    static std::atomic<int> count{0};
    return count;
}

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::printf("  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
            std::fflush(stdout);                                                     \
            ::test::failures()++;                                                    \
        }                                                                            \
    } while (0)

/* Generous: the suite runs under valgrind on a loaded 2-core machine. */
constexpr std::chrono::seconds deadline{30};

/* State shared between callbacks (IO thread) and the test (main thread). */
class Waiter {
public:
    /* Runs f under the lock and wakes every waiter before unlocking, so
     * that a waiter may destroy this Waiter as soon as it wakes: after the
     * unlock, update touches nothing of it. */
    template <class F> void update(F f) {
        std::lock_guard<std::mutex> lock(mutex_);
        f();
        changed_.notify_all();
    }
    /* Waits until pred() holds (checked under the lock) or the deadline. */
    template <class P> bool wait(P pred) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, deadline, pred);
    }
    /* Reads under the lock. */
    template <class F> auto read(F f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return f();
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
};

} // namespace test

#endif
