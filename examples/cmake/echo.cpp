/*
 * The C++ wrapper in a few lines: open, send each argument once the socket
 * is open, print the echoes, close.
 *
 *   echo_cpp ws://127.0.0.1:PORT/ [message...]
 *
 * Exits 0 when every message came back and the close was clean.
 */
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "wsembed.hpp"

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s ws://host:port/ [message...]\n", argv[0]);
        return 2;
    }
    std::vector<std::string> messages(argv + 2, argv + argc);
    if (messages.empty())
        messages.push_back("Hello from C++");

    /* Callbacks run on wsembed's IO thread; main waits for them here. */
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t received = 0;
    bool closed = false, clean = false;

    try {
        wsembed::WebSocket ws(argv[1]);
        ws.on_open([&messages](wsembed::SocketRef socket) {
              for (const auto &m : messages)
                  socket.send(m);
          })
            .on_message([&](const wsembed::Message &m) {
                std::printf("received: %.*s\n", static_cast<int>(m.size()), m.text().data());
                std::lock_guard<std::mutex> lock(mutex);
                received++;
                changed.notify_all();
            })
            .on_error([](const wsembed::ErrorEvent &e) { std::fprintf(stderr, "error: %s\n", e.message.c_str()); })
            .on_close([&](const wsembed::CloseEvent &e) {
                std::printf("closed: %u%s\n", e.code, e.was_clean ? " (clean)" : "");
                std::lock_guard<std::mutex> lock(mutex);
                closed = true;
                clean = e.was_clean;
                changed.notify_all();
            });

        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return received == messages.size() || closed; });
        lock.unlock();
        ws.close(1000, "done");
        lock.lock();
        changed.wait(lock, [&] { return closed; });
    } catch (const wsembed::Error &e) {
        std::fprintf(stderr, "wsembed error %d: %s\n", e.status(), e.what());
        return 1;
    }
    wsembed::shutdown();
    return received == messages.size() && clean ? 0 : 1;
}
