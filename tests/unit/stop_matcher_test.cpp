// Stop strings across token boundaries: held back while ambiguous, excluded from the output.
#include <catch2/catch.hpp>

#include <gemmaforge/runtime/stop_matcher.hpp>

namespace gf = gemmaforge;

namespace {
std::string feed(gf::stop_matcher& m, const char* text) {
  std::string out;
  m.feed(text, out);
  return out;
}
}  // namespace

TEST_CASE("stop_matcher: a stop string split across pieces stops and is excluded", "[cpu][stop]") {
  std::vector<std::string> stops{"\n\nUser:", "###"};
  gf::stop_matcher m(&stops);
  std::string out;
  out += feed(m, "Hello");
  out += feed(m, " world\n");
  CHECK(out == "Hello world");  // "\n" held back: could start "\n\nUser:"
  out += feed(m, "\nUs");
  CHECK_FALSE(m.stopped());
  out += feed(m, "er: more");
  CHECK(m.stopped());
  CHECK(out == "Hello world");
  CHECK(feed(m, "ignored").empty());
}

TEST_CASE("stop_matcher: held-back text is released when the match fails or at the end", "[cpu][stop]") {
  std::vector<std::string> stops{"###"};
  gf::stop_matcher m(&stops);
  std::string out = feed(m, "a#");
  CHECK(out == "a");
  out += feed(m, "#b");
  CHECK(out == "a##b");
  out += feed(m, "##");
  CHECK(out == "a##b");
  m.flush(out);
  CHECK(out == "a##b##");
  CHECK_FALSE(m.stopped());
}

TEST_CASE("stop_matcher: the earliest stop string wins, no stops passes everything", "[cpu][stop]") {
  std::vector<std::string> stops{"cd", "b"};
  gf::stop_matcher m(&stops);
  CHECK(feed(m, "abcd") == "a");
  CHECK(m.stopped());
  gf::stop_matcher none;
  CHECK(feed(none, "x\n\n") == "x\n\n");
}
