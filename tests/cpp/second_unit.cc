/*
 * The second translation unit (wasmtime's double-include test): the
 * wrapper is included here and in wrapper_test.cc and both are linked into
 * one program, so a non-inline definition in the header fails the link
 * (multiple definition), and the same templates instantiated in both units
 * must agree (ODR). It is included twice to check the include guard.
 */
#include "wsembed.hpp"
#include "wsembed.hpp"

#include <string>

#include "test_util.hh"

/* One echo through the wrapper, using the same callback forms and
 * templates as the main unit. Returns true when the echo came back. */
bool second_unit_echo(const std::string &url) {
    test::Waiter waiter;
    std::string echoed;
    bool closed = false;
    wsembed::WebSocket ws(url, wsembed::Options().connect_timeout(std::chrono::seconds(20)));
    ws.on_open([](wsembed::SocketRef s) { s.send("from the second unit"); })
        .on_message([&](const wsembed::Message &m) { waiter.update([&] { echoed = m.str(); }); })
        .on_close([&](const wsembed::CloseEvent &) { waiter.update([&] { closed = true; }); });
    const bool got = waiter.wait([&] { return !echoed.empty(); });
    ws.close(1000, "done");
    const bool done = waiter.wait([&] { return closed; });
    return got && done && echoed == "from the second unit";
}
