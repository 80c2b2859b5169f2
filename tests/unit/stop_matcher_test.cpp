// Stop strings across token boundaries: held back while ambiguous, excluded from the output.
#include <catch2/catch.hpp>

#include <gemmaforge/runtime/stop_matcher.hpp>

namespace gf = gemmaforge;

TEST_CASE("stop_matcher: a stop string split across pieces stops and is excluded", "[cpu][stop]") {
  std::vector<std::string> stops{"\n\nUser:", "###"};
  gf::stop_matcher m(&stops);
  std::string out;
  out += m.feed("Hello");
  out += m.feed(" world\n");
  CHECK(out == "Hello world");  // "\n" held back: could start "\n\nUser:"
  out += m.feed("\nUs");
  CHECK_FALSE(m.stopped());
  out += m.feed("er: more");
  CHECK(m.stopped());
  CHECK(out == "Hello world");
  CHECK(m.feed("ignored").empty());
}

TEST_CASE("stop_matcher: held-back text is released when the match fails or at the end", "[cpu][stop]") {
  std::vector<std::string> stops{"###"};
  gf::stop_matcher m(&stops);
  std::string out = m.feed("a#");
  CHECK(out == "a");
  out += m.feed("#b");
  CHECK(out == "a##b");
  out += m.feed("##");
  CHECK(out == "a##b");
  out += m.flush();
  CHECK(out == "a##b##");
  CHECK_FALSE(m.stopped());
}

TEST_CASE("stop_matcher: the earliest stop string wins; no stops passes everything", "[cpu][stop]") {
  std::vector<std::string> stops{"cd", "b"};
  gf::stop_matcher m(&stops);
  CHECK(m.feed("abcd") == "a");
  CHECK(m.stopped());
  gf::stop_matcher none;
  CHECK(none.feed("x\n\n") == "x\n\n");
}
