// KV pool accounting: allocation, release, exhaustion, rings, prefix sharing. Every test ends by
// checking that the free count returns to the total (nothing leaks).
#include <catch2/catch.hpp>

#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/model/gemma3.hpp>

#include <numeric>
#include <vector>

namespace gf = gemmaforge;

namespace {
template <class Model, class Elem = gf::bf16>
struct pool_fixture {
  explicit pool_fixture(gf::kv_pool_config c)
      : memory(gf::kv_pool<Model, Elem>::bytes_required(c)), pool(c, memory.data()) {}
  std::vector<std::byte> memory;
  gf::kv_pool<Model, Elem> pool;
};
std::vector<std::int32_t> iota_ids(int n, int first = 3) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}
}  // namespace

TEST_CASE("block_allocator: O(1) allocate/retain/release returns every block", "[cpu][kv]") {
  gf::block_allocator a(4);
  CHECK(a.free_count() == 4);
  const auto b0 = a.allocate(), b1 = a.allocate(), b2 = a.allocate(), b3 = a.allocate();
  CHECK(a.allocate() == -1);  // exhausted
  CHECK(a.free_count() == 0);
  a.retain(b1);
  a.release(b1);
  CHECK(a.free_count() == 0);  // still referenced once
  a.release(b1);
  CHECK(a.free_count() == 1);
  CHECK_THROWS_AS(a.release(b1), gf::error);  // double free is caught, not silently corrupting
  for (auto b : {b0, b2, b3}) a.release(b);
  CHECK(a.free_count() == 4);
}

TEST_CASE("kv_pool: sizes follow the layout and the ring rule", "[cpu][kv]") {
  using M = gf::models::tiny_gemma3;  // 1 global + 5 local layers, window 8, 1 kv head x 16
  gf::kv_pool_config c{.block_tokens = 4, .global_blocks = 10, .max_batch = 2, .max_seq_len = 64, .prefix_slots = 1};
  using P = gf::kv_pool<M, gf::bf16>;
  CHECK(P::ring_blocks_for(c) == 3);  // ceil(8 / 4) + 1
  CHECK(P::local_blocks_for(c) == 9); // (2 slots + 1 snapshot) x 3
  CHECK(P::block_layer_bytes(4) == 2 * 4 * 16 * 2);
  CHECK(P::bytes_required(c) == P::block_layer_bytes(4) * (10 * 1 + 9 * 5));
  // fp8 adds one f32 scale per (token, head) vector for K and V.
  CHECK(gf::kv_pool<M, gf::fp8_e4m3>::block_layer_bytes(4) == 2 * 4 * 16 + 2 * 4 * 4);
  // A short context caps the ring.
  gf::kv_pool_config shortc = c;
  shortc.max_seq_len = 6;
  CHECK(P::ring_blocks_for(shortc) == 2);
}

TEST_CASE("kv_pool: admission reserves, growth allocates, release returns everything", "[cpu][kv]") {
  pool_fixture<gf::models::tiny_gemma1> f({.block_tokens = 4, .global_blocks = 8, .max_batch = 3, .max_seq_len = 32});
  auto& pool = f.pool;
  const auto ids = iota_ids(6);
  auto a = pool.admit(ids.data(), 6, 20);  // needs 5 blocks
  REQUIRE(a.slot >= 0);
  CHECK(pool.reserved_blocks() == 5);
  CHECK(pool.free_blocks() == 8);
  pool.ensure_blocks(a.slot, 6);
  CHECK(pool.used_blocks() == 2);
  CHECK(pool.reserved_blocks() == 3);
  pool.set_cached_tokens(a.slot, 6);
  // A second request needing 4 blocks does not fit (8 - 2 used - 3 reserved = 3): it must wait.
  auto b = pool.admit(ids.data(), 6, 16);
  CHECK(b.slot == -1);
  CHECK(pool.free_slots() == 2);  // a failed admission changes nothing
  auto c = pool.admit(ids.data(), 6, 12);  // 3 blocks: fits exactly
  REQUIRE(c.slot >= 0);
  CHECK(pool.reserved_blocks() == 6);
  // Growing past the reservation is a bug, reported as such.
  pool.ensure_blocks(c.slot, 12);
  CHECK_THROWS_AS(pool.ensure_blocks(c.slot, 13), gf::error);
  pool.release(a.slot);
  pool.release(c.slot);
  CHECK(pool.free_blocks() == pool.total_blocks());
  CHECK(pool.reserved_blocks() == 0);
  CHECK(pool.free_slots() == 3);
  // Never-fitting requests are distinguishable from "wait".
  CHECK_FALSE(pool.could_ever_fit(33));
  CHECK_FALSE(pool.could_ever_fit(8 * 4 + 1));
  CHECK(pool.could_ever_fit(32));
}

TEST_CASE("kv_pool: slots run out before blocks do", "[cpu][kv]") {
  pool_fixture<gf::models::tiny_gemma1> f({.block_tokens = 4, .global_blocks = 64, .max_batch = 2, .max_seq_len = 16});
  const auto ids = iota_ids(4);
  auto a = f.pool.admit(ids.data(), 4, 8);
  auto b = f.pool.admit(ids.data(), 4, 8);
  auto c = f.pool.admit(ids.data(), 4, 8);
  CHECK(a.slot >= 0);
  CHECK(b.slot >= 0);
  CHECK(c.slot == -1);
  f.pool.release(a.slot);
  f.pool.release(b.slot);
  CHECK(f.pool.free_blocks() == 64);
}

TEST_CASE("kv_pool: global views page through the table, local views wrap around the ring", "[cpu][kv]") {
  using M = gf::models::tiny_gemma3;
  pool_fixture<M> f({.block_tokens = 4, .global_blocks = 20, .max_batch = 2, .max_seq_len = 64});
  auto& pool = f.pool;
  const auto ids = iota_ids(8);
  auto a = pool.admit(ids.data(), 8, 40);
  auto b = pool.admit(ids.data(), 8, 40);
  pool.ensure_blocks(a.slot, 40);
  pool.ensure_blocks(b.slot, 40);
  // Layer 5 is the global one: position t -> table[t / 4]; distinct slots never share blocks.
  auto ga = pool.view(a.slot, 5).as_const();
  auto gb = pool.view(b.slot, 5).as_const();
  std::vector<bool> seen(20, false);
  for (int blk = 0; blk < 10; ++blk) {
    for (auto* v : {&ga, &gb}) {
      const int id = v->blocks[blk];
      REQUIRE(id >= 0);
      REQUIRE(id < 20);
      CHECK_FALSE(seen[std::size_t(id)]);
      seen[std::size_t(id)] = true;
    }
  }
  CHECK(ga.offset(5, 0) == (std::int64_t(ga.blocks[1]) * 4 + 1) * 16);
  // Layer 0 is local: ring of 3 blocks; positions 12 blocks apart land in the same place.
  auto la = pool.view(a.slot, 0).as_const();
  auto lb = pool.view(b.slot, 0).as_const();
  CHECK(la.n_blocks == 3);
  CHECK(la.offset(1, 0) == la.offset(1 + 12, 0));
  CHECK(la.offset(1, 0) != la.offset(1 + 4, 0));
  CHECK(la.offset(0, 0) != lb.offset(0, 0));  // each slot has its own ring
  pool.release(a.slot);
  pool.release(b.slot);
  CHECK(pool.free_blocks() == 20);
}

TEST_CASE("kv_pool: prefix sharing reuses full blocks by reference and copies the ring", "[cpu][kv]") {
  using M = gf::models::tiny_gemma3;
  pool_fixture<M, float> f({.block_tokens = 4, .global_blocks = 12, .max_batch = 2, .max_seq_len = 32, .prefix_slots = 2});
  auto& pool = f.pool;
  const auto sys = iota_ids(10);  // 10-token "system prompt": 2 full blocks
  auto a = pool.admit(sys.data(), 10, 12);
  REQUIRE(a.slot >= 0);
  CHECK(a.reused_tokens == 0);
  pool.ensure_blocks(a.slot, 10);
  // Write recognisable values into slot a's ring (local layer 0) for positions 0..9.
  auto ring = pool.view(a.slot, 0);
  for (int t = 0; t < 10; ++t) static_cast<float*>(ring.k)[ring.as_const().offset(t, 0)] = float(100 + t);
  pool.set_cached_tokens(a.slot, 10);
  pool.register_prefix(a.slot, sys.data(), 10);
  CHECK(pool.prefix_entries() == 1);
  const auto blocks_a0 = pool.view(a.slot, 5).blocks[0];
  pool.release(a.slot);
  CHECK(pool.used_blocks() == 2);  // the entry keeps its 2 full blocks
  CHECK(pool.cached_only_blocks() == 2);

  // Same system prompt + a question: the 8 cached tokens are reused.
  auto q = sys;
  q.insert(q.end(), {400, 401, 402});
  auto b = pool.admit(q.data(), std::int32_t(q.size()), 20);
  REQUIRE(b.slot >= 0);
  CHECK(b.reused_tokens == 8);
  CHECK(pool.cached_tokens(b.slot) == 8);
  CHECK(pool.view(b.slot, 5).blocks[0] == blocks_a0);  // shared by reference
  CHECK(pool.reserved_blocks() == 5 - 2);
  auto ring_b = pool.view(b.slot, 0);
  for (int t = 0; t < 8; ++t) CHECK(static_cast<float*>(ring_b.k)[ring_b.as_const().offset(t, 0)] == float(100 + t));
  pool.ensure_blocks(b.slot, 20);
  pool.release(b.slot);
  CHECK(pool.used_blocks() == 2);
  // A prompt that differs inside the first block shares nothing.
  auto other = q;
  other[1] = 7;
  auto c = pool.admit(other.data(), std::int32_t(other.size()), 20);
  CHECK(c.reused_tokens == 0);
  pool.release(c.slot);
  // Under pressure the cache is evicted rather than making a request wait forever.
  auto big = iota_ids(40, 50);
  auto d = pool.admit(big.data(), 8, 32 + 0 * 40);  // 8 blocks of 12; 2 held by the cache
  REQUIRE(d.slot >= 0);
  auto e = pool.admit(big.data(), 8, 12);           // needs 3 more: 12 - 8 - 2 < 3 -> evicts
  REQUIRE(e.slot >= 0);
  CHECK(pool.prefix_entries() == 0);
  pool.release(d.slot);
  pool.release(e.slot);
  CHECK(pool.free_blocks() == pool.total_blocks());
  CHECK(pool.reserved_blocks() == 0);
}

TEST_CASE("kv_pool: blocks two prefix entries share count once as cached, and only when no sequence holds them", "[cpu][kv]") {
  // A system prompt's entry and the whole prompt's entry (kept side by side on a model with
  // sliding-window layers) share the system prompt's blocks: each has refcount 2 when cached only.
  using M = gf::models::tiny_gemma3;
  pool_fixture<M, float> f({.block_tokens = 4, .global_blocks = 12, .max_batch = 2, .max_seq_len = 32, .prefix_slots = 2});
  auto& pool = f.pool;
  const auto ids = iota_ids(13);
  auto a = pool.admit(ids.data(), 13, 14);
  REQUIRE(a.slot >= 0);
  pool.ensure_blocks(a.slot, 13);
  pool.set_cached_tokens(a.slot, 13);
  pool.register_prefix(a.slot, ids.data(), 8);   // 2 blocks
  pool.register_prefix(a.slot, ids.data(), 13);  // 3 blocks, the first 2 shared with the entry above
  CHECK(pool.prefix_entries() == 2);
  CHECK(pool.cached_only_blocks() == 0);  // the running sequence holds all of them
  pool.release(a.slot);
  CHECK(pool.used_blocks() == 3);
  CHECK(pool.cached_only_blocks() == 3);
  CHECK(pool.cached_only_blocks() == 3);  // the count leaves no state behind
  pool.clear_prefix_cache();
  CHECK(pool.free_blocks() == 12);
}

TEST_CASE("kv_pool: a longer chat history replaces the shorter entry it extends", "[cpu][kv]") {
  using M = gf::models::tiny_gemma1;
  pool_fixture<M> f({.block_tokens = 4, .global_blocks = 16, .max_batch = 1, .max_seq_len = 32, .prefix_slots = 2});
  auto& pool = f.pool;
  auto turn1 = iota_ids(9);
  auto a = pool.admit(turn1.data(), 9, 9);
  pool.ensure_blocks(a.slot, 9);
  pool.set_cached_tokens(a.slot, 9);
  pool.register_prefix(a.slot, turn1.data(), 9);  // 8 tokens cached
  pool.release(a.slot);
  auto turn2 = iota_ids(18);  // extends turn 1
  auto b = pool.admit(turn2.data(), 18, 18);
  CHECK(b.reused_tokens == 8);
  pool.ensure_blocks(b.slot, 18);
  pool.set_cached_tokens(b.slot, 18);
  pool.register_prefix(b.slot, turn2.data(), 18);  // 16 tokens: replaces the 8-token entry
  CHECK(pool.prefix_entries() == 1);
  pool.release(b.slot);
  CHECK(pool.used_blocks() == 4);
  pool.clear_prefix_cache();
  CHECK(pool.free_blocks() == 16);
}

// Groups (OpenAI's n): room for all of them is checked before the first is admitted, counting
// what evicting prefix entries frees; a scored prompt can be admitted without the cached prefix.
TEST_CASE("kv_pool: could_admit_together counts slots and evictable blocks, admit without reuse", "[cpu][kv]") {
  using M = gf::models::tiny_gemma1;
  pool_fixture<M, float> f({.block_tokens = 4, .global_blocks = 12, .max_batch = 3, .max_seq_len = 32, .prefix_slots = 2});
  auto& pool = f.pool;
  CHECK(pool.could_admit_together(3, 16));       // 3 x 4 blocks of 12
  CHECK_FALSE(pool.could_admit_together(3, 17)); // 3 x 5
  CHECK_FALSE(pool.could_admit_together(4, 4));  // 3 slots
  const auto ids = iota_ids(10);
  auto a = pool.admit(ids.data(), 10, 12);
  pool.ensure_blocks(a.slot, 10);
  pool.set_cached_tokens(a.slot, 10);
  pool.register_prefix(a.slot, ids.data(), 10);
  CHECK_FALSE(pool.could_admit_together(3, 16));  // one slot is taken
  CHECK(pool.could_admit_together(2, 16));        // 9 free (the slot holds 3) + 0 cached-only: 2 x 4 fit
  pool.release(a.slot);
  CHECK(pool.cached_only_blocks() == 2);
  CHECK(pool.could_admit_together(3, 16));        // the entry's 2 blocks count: they can be evicted
  // reuse = false: the cached prefix is not attached.
  auto b = pool.admit(ids.data(), 10, 12, false);
  CHECK(b.reused_tokens == 0);
  auto c = pool.admit(ids.data(), 10, 12);
  CHECK(c.reused_tokens == 8);
  pool.release(b.slot);
  pool.release(c.slot);
  pool.clear_prefix_cache();
  CHECK(pool.free_blocks() == 12);
}
