#pragma once
// The static KV pool: one region of the planned arena, split into blocks (kv/kv_layout.hpp).
//
//  * Global layers page through per-sequence block tables (max_blocks_per_seq entries per slot,
//    fixed arrays). Blocks come from one block_allocator shared by all sequences.
//  * Local (sliding-window) layers use per-slot rings of ring_blocks blocks, assigned statically
//    (slot s owns local blocks [s*R, (s+1)*R)), so a Gemma 2/3 local layer never holds more than
//    its window, whatever the sequence length.
//  * Admission reserves every block a request may need (prompt + max new tokens, capped by the
//    context) before it starts, so a running request can never run out of blocks: no preemption
//    is needed, and a request that does not fit waits (the scheduler keeps FIFO order).
//  * Prefix sharing: prompts and finished histories (chat turns) are registered as prefix entries
//    that hold references to their full global blocks plus a snapshot of the rings at their end.
//    A new request attaches the longest run of full blocks it shares with an entry (reference
//    counted) and prefills only the rest. For models with sliding-window layers the rings must be
//    restored too, which is possible only at an entry's end: there the whole entry must match
//    (the engine registers system-prompt boundaries as entries of their own for this). Shared blocks are full and never
//    written again (a sequence only writes positions past its prefix), so copy-on-write reduces to
//    "never write a shared block", which the block-aligned prefix length guarantees.
//
// The planes may live in host or device memory: the pool only does pointer arithmetic on them and
// copies ring snapshots through the copy function it is given. All bookkeeping is host-side.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/kv/block_allocator.hpp>
#include <gemmaforge/kv/kv_layout.hpp>
#include <gemmaforge/model/layer_pattern.hpp>

namespace gemmaforge {

struct kv_pool_config {
  std::int32_t block_tokens = 16;
  std::int32_t global_blocks = 0;  // blocks of the shared paged pool (global layers)
  std::int32_t max_batch = 1;      // sequence slots
  std::int32_t max_seq_len = 0;    // longest sequence (tokens)
  std::int32_t prefix_slots = 0;   // prefix-cache entries (each owns one ring snapshot)
};

using copy_fn = void (*)(void* dst, const void* src, std::size_t bytes);
inline void host_copy(void* dst, const void* src, std::size_t bytes) { std::memcpy(dst, src, bytes); }

template <class Model, class KvElem>
class kv_pool {
 public:
  static constexpr int n_global_layers = Model::layers::global_layers();
  static constexpr int n_local_layers = Model::layers::local_layers();
  static constexpr int kv_heads = Model::kv_heads;
  static constexpr int head_dim = Model::head_dim;
  static constexpr bool scaled = kv_has_scale<KvElem>;

  // Blocks in one slot's ring: enough for window - 1 earlier positions plus a whole block of new
  // ones; never more than a whole sequence needs.
  static constexpr std::int32_t ring_blocks_for(const kv_pool_config& c) {
    if constexpr (n_local_layers == 0) {
      return 0;
    } else {
      const std::int32_t r = std::int32_t(ceil_div(std::uint64_t(Model::window), std::uint64_t(c.block_tokens))) + 1;
      const std::int32_t seq = std::int32_t(ceil_div(std::uint64_t(c.max_seq_len), std::uint64_t(c.block_tokens)));
      return std::min(r, seq);
    }
  }
  static constexpr std::int32_t local_blocks_for(const kv_pool_config& c) {
    return ring_blocks_for(c) * (c.max_batch + c.prefix_slots);
  }
  // Bytes of one block of one layer: K + V (+ their scales).
  static constexpr std::uint64_t block_layer_bytes(std::int32_t block_tokens) {
    const std::uint64_t vecs = std::uint64_t(kv_heads) * std::uint64_t(block_tokens);
    return 2 * vecs * head_dim * sizeof(KvElem) + (scaled ? 2 * vecs * sizeof(float) : 0);
  }
  // The two regions of the planned layout (plan/arena_layout.hpp: kv_global, kv_local).
  static constexpr std::uint64_t global_bytes(const kv_pool_config& c) {
    return block_layer_bytes(c.block_tokens) * std::uint64_t(c.global_blocks) * n_global_layers;
  }
  static constexpr std::uint64_t local_bytes(const kv_pool_config& c) {
    return block_layer_bytes(c.block_tokens) * std::uint64_t(local_blocks_for(c)) * n_local_layers;
  }
  static constexpr std::uint64_t bytes_required(const kv_pool_config& c) { return global_bytes(c) + local_bytes(c); }

  // One contiguous region: the global planes, then the local ones.
  kv_pool(const kv_pool_config& c, std::byte* memory, copy_fn copy = host_copy)
      : kv_pool(c, memory, memory + global_bytes(c), copy) {}

  // The global planes in `global_memory` (global_bytes), the local rings and prefix snapshots in
  // `local_memory` (local_bytes).
  kv_pool(const kv_pool_config& c, std::byte* global_memory, std::byte* local_memory, copy_fn copy = host_copy)
      : cfg_(c), copy_(copy), alloc_(c.global_blocks) {
    if (c.block_tokens <= 0 || c.max_batch <= 0 || c.max_seq_len <= 0 || c.global_blocks < 0 || c.prefix_slots < 0)
      throw error(errc::invalid_argument, "kv_pool: block_tokens, max_batch and max_seq_len must be positive");
    max_blocks_per_seq_ = std::int32_t(ceil_div(std::uint64_t(c.max_seq_len), std::uint64_t(c.block_tokens)));
    ring_blocks_ = ring_blocks_for(c);
    const std::int32_t local_blocks = local_blocks_for(c);
    // Carve the planes: for each layer of each kind, K plane, V plane, then K and V scales.
    std::byte* p = global_memory;
    auto carve = [&](Plane* planes, int n_layers, std::int32_t n_blocks) {
      const std::uint64_t elems = std::uint64_t(n_blocks) * kv_heads * c.block_tokens * head_dim;
      const std::uint64_t vecs = std::uint64_t(n_blocks) * kv_heads * c.block_tokens;
      for (int l = 0; l < n_layers; ++l) {
        planes[l].k = reinterpret_cast<KvElem*>(p); p += elems * sizeof(KvElem);
        planes[l].v = reinterpret_cast<KvElem*>(p); p += elems * sizeof(KvElem);
        if constexpr (scaled) {
          planes[l].k_scale = reinterpret_cast<float*>(p); p += vecs * sizeof(float);
          planes[l].v_scale = reinterpret_cast<float*>(p); p += vecs * sizeof(float);
        }
      }
    };
    carve(global_planes_, n_global_layers, c.global_blocks);
    p = local_memory;
    carve(local_planes_, n_local_layers, local_blocks);

    tables_ = std::make_unique<std::int32_t[]>(std::size_t(c.max_batch) * std::size_t(max_blocks_per_seq_));
    ring_ids_ = std::make_unique<std::int32_t[]>(std::size_t(std::max(local_blocks, 1)));
    for (std::int32_t i = 0; i < local_blocks; ++i) ring_ids_[std::size_t(i)] = i;
    slots_ = std::make_unique<slot_state[]>(std::size_t(c.max_batch));
    free_slots_ = c.max_batch;
    entries_ = std::make_unique<prefix_entry[]>(std::size_t(std::max(c.prefix_slots, 1)));
    entry_tokens_ = std::make_unique<std::int32_t[]>(std::size_t(c.prefix_slots) * std::size_t(c.max_seq_len) + 1);
    entry_blocks_ = std::make_unique<std::int32_t[]>(std::size_t(c.prefix_slots) * std::size_t(max_blocks_per_seq_) + 1);
    entry_refs_ = std::make_unique<std::uint16_t[]>(std::size_t(c.global_blocks) + 1);
  }

  kv_pool(const kv_pool&) = delete;
  kv_pool& operator=(const kv_pool&) = delete;

  const kv_pool_config& config() const { return cfg_; }
  std::int32_t block_tokens() const { return cfg_.block_tokens; }
  std::int32_t ring_blocks() const { return ring_blocks_; }
  std::int32_t max_blocks_per_seq() const { return max_blocks_per_seq_; }

  // ---- accounting ---------------------------------------------------------------------------
  std::int32_t total_blocks() const { return alloc_.total(); }
  std::int32_t free_blocks() const { return alloc_.free_count(); }
  std::int32_t used_blocks() const { return alloc_.used_count(); }
  std::int32_t reserved_blocks() const { return reserved_; }  // promised to running requests, not yet taken
  std::int32_t free_slots() const { return free_slots_; }
  std::int32_t prefix_entries() const {
    std::int32_t n = 0;
    for (std::int32_t e = 0; e < cfg_.prefix_slots; ++e) n += entries_[std::size_t(e)].used;
    return n;
  }
  // Blocks held only by prefix entries (what evicting every entry would give back). A block that
  // several entries share (a system prompt's entry and a longer prompt's) counts once, and only
  // when no sequence holds it: all its references are entries'.
  std::int32_t cached_only_blocks() const {
    std::int32_t n = 0;
    auto each_entry_block = [&](auto&& fn) {
      for (std::int32_t e = 0; e < cfg_.prefix_slots; ++e)
        if (entries_[std::size_t(e)].used)
          for (std::int32_t i = 0; i < entries_[std::size_t(e)].n_blocks; ++i) fn(entry_block(e, i));
    };
    each_entry_block([&](std::int32_t b) { ++entry_refs_[std::size_t(b)]; });
    each_entry_block([&](std::int32_t b) {
      std::uint16_t& r = entry_refs_[std::size_t(b)];
      if (r != 0 && r == alloc_.ref_count(b)) ++n;
      r = 0;  // counted (or not) once; also leaves the scratch zeroed for the next call
    });
    return n;
  }

  // ---- admission ----------------------------------------------------------------------------
  struct admission {
    std::int32_t slot = -1;         // -1: does not fit now (try again after others finish)
    std::int32_t reused_tokens = 0; // prompt tokens whose KV came from the prefix cache
  };

  // Blocks a request of `max_total` tokens needs, ignoring prefix sharing.
  std::int32_t blocks_for(std::int32_t max_total) const {
    return std::int32_t(ceil_div(std::uint64_t(std::max(max_total, 1)), std::uint64_t(cfg_.block_tokens)));
  }

  // Would a request of `max_total` tokens fit an empty pool at all? (Else it must be rejected, not queued.)
  bool could_ever_fit(std::int32_t max_total) const {
    return max_total <= cfg_.max_seq_len && blocks_for(max_total) <= alloc_.total();
  }

  // Could `n` requests of `max_total` tokens each be admitted now (slots, and blocks counting
  // what evicting prefix entries would free)? A group of sequences over one prompt asks this
  // before its first member is admitted, so that all of them will find room.
  bool could_admit_together(std::int32_t n, std::int32_t max_total) const {
    return free_slots_ >= n && std::int64_t(available()) + cached_only_blocks() >= std::int64_t(n) * blocks_for(max_total);
  }

  // Admit a request: take a slot, attach the longest cached prefix of `ids` (unless `reuse` is
  // false: a scored prompt computes every position), and reserve the blocks for up to
  // `max_total` tokens. Evicts least-recently-used prefix entries if that makes room. On failure
  // nothing changes.
  admission admit(const std::int32_t* ids, std::int32_t n_prompt, std::int32_t max_total, bool reuse = true) {
    admission a;
    if (free_slots_ == 0 || max_total > cfg_.max_seq_len || n_prompt <= 0) return a;
    const prefix_match m = reuse ? find_prefix(ids, n_prompt) : prefix_match{};
    const std::int32_t need = blocks_for(max_total) - m.blocks;
    if (m.entry >= 0) {  // protect it from eviction
      entries_[std::size_t(m.entry)].last_used = ++clock_;
      ++entries_[std::size_t(m.entry)].hits;
    }
    while (available() < need) {
      if (!evict_lru(m.entry)) return a;
    }
    std::int32_t s = 0;
    while (slots_[std::size_t(s)].active) ++s;
    slot_state& st = slots_[std::size_t(s)];
    st = slot_state{};
    st.active = true;
    --free_slots_;
    if (m.entry >= 0) {
      for (std::int32_t i = 0; i < m.blocks; ++i) {
        const std::int32_t b = entry_block(m.entry, i);
        alloc_.retain(b);
        table(s)[i] = b;
      }
      st.n_blocks = m.blocks;
      st.n_tokens = m.blocks * cfg_.block_tokens;
      if constexpr (n_local_layers > 0) copy_ring(cfg_.max_batch + m.entry, s);
      a.reused_tokens = st.n_tokens;
    }
    st.reserved = need;
    reserved_ += need;
    a.slot = s;
    return a;
  }

  // Make sure positions < n_tokens of `slot` have blocks (takes them from the reservation).
  void ensure_blocks(std::int32_t slot, std::int32_t n_tokens) {
    slot_state& st = state(slot);
    const std::int32_t need = blocks_for(n_tokens);
    while (st.n_blocks < need) {
      if (st.reserved == 0)
        throw error(errc::internal, "kv_pool: slot " + std::to_string(slot) + " grew past its reservation");
      const std::int32_t b = alloc_.allocate();
      if (b < 0) throw error(errc::internal, "kv_pool: reserved block missing from the free list");
      --st.reserved;
      --reserved_;
      table(slot)[st.n_blocks++] = b;
    }
  }

  // Tokens whose K/V are in the cache for this slot.
  std::int32_t cached_tokens(std::int32_t slot) const { return state(slot).n_tokens; }
  void set_cached_tokens(std::int32_t slot, std::int32_t n) {
    slot_state& st = state(slot);
    if (n > st.n_blocks * cfg_.block_tokens) throw error(errc::internal, "kv_pool: tokens past the allocated blocks");
    st.n_tokens = n;
  }

  // Finished, cancelled or failed: every block and the unused reservation go back.
  void release(std::int32_t slot) {
    slot_state& st = state(slot);
    for (std::int32_t i = 0; i < st.n_blocks; ++i) alloc_.release(table(slot)[i]);
    reserved_ -= st.reserved;
    st = slot_state{};
    ++free_slots_;
  }

  // ---- prefix cache -------------------------------------------------------------------------
  // Remember the first n_cached tokens of `slot` (ids[0..n_cached) must be what the slot holds),
  // rounded down to whole blocks. For all-global models an entry that this one extends (a chat
  // history one turn older) is replaced: partial matching still finds its blocks in the new one.
  // Sliding-window models keep it, since only an entry's end can be restored.
  void register_prefix(std::int32_t slot, const std::int32_t* ids, std::int32_t n_cached) {
    if (cfg_.prefix_slots == 0) return;
    const slot_state& st = state(slot);
    n_cached = std::min(n_cached, st.n_tokens);
    const std::int32_t nb = n_cached / cfg_.block_tokens;
    if (nb == 0) return;
    const std::int32_t n = nb * cfg_.block_tokens;
    std::int32_t target = -1;
    for (std::int32_t e = 0; e < cfg_.prefix_slots; ++e) {
      prefix_entry& en = entries_[std::size_t(e)];
      if (!en.used || en.n_tokens > n) continue;
      if (std::equal(ids, ids + en.n_tokens, tokens_of(e))) {
        if (en.n_tokens == n) { en.last_used = ++clock_; return; }  // already cached
        if (n_local_layers == 0) {
          target = e;  // a shorter prefix of this one: replace it
          break;
        }
      }
    }
    if (target >= 0) {
      drop_entry(target);
    } else {
      for (std::int32_t e = 0; e < cfg_.prefix_slots && target < 0; ++e)
        if (!entries_[std::size_t(e)].used) target = e;
      if (target < 0) {
        target = lru_entry(-1);
        drop_entry(target);
      }
    }
    prefix_entry& en = entries_[std::size_t(target)];
    en.used = true;
    en.n_tokens = n;
    en.n_blocks = nb;
    en.last_used = ++clock_;
    std::copy(ids, ids + n, tokens_of(target));
    for (std::int32_t i = 0; i < nb; ++i) {
      const std::int32_t b = table(slot)[i];
      alloc_.retain(b);
      entry_blocks_[std::size_t(target) * std::size_t(max_blocks_per_seq_) + std::size_t(i)] = b;
    }
    copy_ring(slot, cfg_.max_batch + target);
  }

  void clear_prefix_cache() {
    for (std::int32_t e = 0; e < cfg_.prefix_slots; ++e)
      if (entries_[std::size_t(e)].used) drop_entry(e);
  }

  // ---- views for attention ------------------------------------------------------------------
  kv_cache_mut_view view(std::int32_t slot, int layer) {
    const layer_kind kind = Model::layers::kind(layer);
    const int idx = Model::layers::index_in_kind(layer);
    const Plane& pl = kind == layer_kind::global ? global_planes_[idx] : local_planes_[idx];
    kv_cache_mut_view v;
    v.k = pl.k;
    v.v = pl.v;
    v.k_scale = pl.k_scale;
    v.v_scale = pl.v_scale;
    if (kind == layer_kind::global) {
      v.blocks = table(slot);
      v.n_blocks = max_blocks_per_seq_;
    } else {
      v.blocks = ring_ids_.get() + std::size_t(slot) * std::size_t(ring_blocks_);
      v.n_blocks = ring_blocks_;
    }
    v.block_tokens = cfg_.block_tokens;
    v.kv_heads = kv_heads;
    v.head_dim = head_dim;
    return v;
  }

  const std::int32_t* block_table(std::int32_t slot) const { return tables_.get() + std::size_t(slot) * std::size_t(max_blocks_per_seq_); }
  const std::int32_t* ring_ids() const { return ring_ids_.get(); }

 private:
  struct Plane {
    KvElem* k = nullptr;
    KvElem* v = nullptr;
    float* k_scale = nullptr;
    float* v_scale = nullptr;
  };
  struct slot_state {
    bool active = false;
    std::int32_t n_blocks = 0;   // blocks in the table
    std::int32_t n_tokens = 0;   // tokens with K/V written
    std::int32_t reserved = 0;   // blocks still promised to this slot
  };
  struct prefix_entry {
    bool used = false;
    std::int32_t n_tokens = 0;
    std::int32_t n_blocks = 0;
    std::uint64_t last_used = 0;
    std::uint32_t hits = 0;  // requests that reused it: shared prefixes outlive one-off prompts
  };

  std::int32_t* table(std::int32_t slot) { return tables_.get() + std::size_t(slot) * std::size_t(max_blocks_per_seq_); }
  std::int32_t* tokens_of(std::int32_t e) { return entry_tokens_.get() + std::size_t(e) * std::size_t(cfg_.max_seq_len); }
  std::int32_t entry_block(std::int32_t e, std::int32_t i) const {
    return entry_blocks_[std::size_t(e) * std::size_t(max_blocks_per_seq_) + std::size_t(i)];
  }
  slot_state& state(std::int32_t slot) {
    if (slot < 0 || slot >= cfg_.max_batch || !slots_[std::size_t(slot)].active)
      throw error(errc::internal, "kv_pool: slot " + std::to_string(slot) + " is not active");
    return slots_[std::size_t(slot)];
  }
  const slot_state& state(std::int32_t slot) const { return const_cast<kv_pool*>(this)->state(slot); }

  std::int32_t available() const { return alloc_.free_count() - reserved_; }

  struct prefix_match {
    std::int32_t entry = -1;
    std::int32_t blocks = 0;
  };

  // The entry sharing the most full blocks with ids[0..n). At least one prompt token is left to
  // prefill (its logits start the generation). Global layers can reuse any common run of full
  // blocks; a model with sliding-window layers also needs the ring state at that position, which
  // an entry has only at its end, so there the whole entry must match.
  prefix_match find_prefix(const std::int32_t* ids, std::int32_t n) {
    prefix_match best;
    const std::int32_t bt = cfg_.block_tokens;
    for (std::int32_t e = 0; e < cfg_.prefix_slots; ++e) {
      const prefix_entry& en = entries_[std::size_t(e)];
      if (!en.used) continue;
      const std::int32_t limit = std::min(en.n_tokens, n - 1);
      const std::int32_t* cached = tokens_of(e);
      std::int32_t common = 0;
      while (common < limit && cached[common] == ids[common]) ++common;
      std::int32_t blocks = common / bt;
      if (n_local_layers > 0 && blocks != en.n_blocks) blocks = 0;
      if (blocks > best.blocks) best = prefix_match{e, blocks};
    }
    return best;
  }

  // Eviction victim: entries nobody reused go first (one-off prompts), then the least recently used.
  std::int32_t lru_entry(std::int32_t keep) const {
    std::int32_t lru = -1;
    auto worse = [&](const prefix_entry& a, const prefix_entry& b) {
      if ((a.hits == 0) != (b.hits == 0)) return a.hits == 0;
      return a.last_used < b.last_used;
    };
    for (std::int32_t e = 0; e < cfg_.prefix_slots; ++e) {
      const prefix_entry& en = entries_[std::size_t(e)];
      if (!en.used || e == keep) continue;
      if (lru < 0 || worse(en, entries_[std::size_t(lru)])) lru = e;
    }
    return lru;
  }

  bool evict_lru(std::int32_t keep) {
    const std::int32_t e = lru_entry(keep);
    if (e < 0) return false;
    drop_entry(e);
    return true;
  }

  void drop_entry(std::int32_t e) {
    prefix_entry& en = entries_[std::size_t(e)];
    for (std::int32_t i = 0; i < en.n_blocks; ++i) alloc_.release(entry_block(e, i));
    en = prefix_entry{};
  }

  // Copy the ring of ring-owner `from` to ring-owner `to` (owners: slots, then prefix entries).
  void copy_ring(std::int32_t from, std::int32_t to) {
    if constexpr (n_local_layers > 0) {
      const std::uint64_t per_block_elems = std::uint64_t(kv_heads) * cfg_.block_tokens * head_dim;
      const std::uint64_t per_block_vecs = std::uint64_t(kv_heads) * cfg_.block_tokens;
      const std::uint64_t ring_elems = per_block_elems * std::uint64_t(ring_blocks_);
      const std::uint64_t ring_vecs = per_block_vecs * std::uint64_t(ring_blocks_);
      for (int l = 0; l < n_local_layers; ++l) {
        const Plane& pl = local_planes_[l];
        copy_(pl.k + std::uint64_t(to) * ring_elems, pl.k + std::uint64_t(from) * ring_elems, ring_elems * sizeof(KvElem));
        copy_(pl.v + std::uint64_t(to) * ring_elems, pl.v + std::uint64_t(from) * ring_elems, ring_elems * sizeof(KvElem));
        if constexpr (scaled) {
          copy_(pl.k_scale + std::uint64_t(to) * ring_vecs, pl.k_scale + std::uint64_t(from) * ring_vecs, ring_vecs * sizeof(float));
          copy_(pl.v_scale + std::uint64_t(to) * ring_vecs, pl.v_scale + std::uint64_t(from) * ring_vecs, ring_vecs * sizeof(float));
        }
      }
    } else {
      (void)from; (void)to;
    }
  }

  kv_pool_config cfg_;
  copy_fn copy_;
  block_allocator alloc_;
  std::int32_t max_blocks_per_seq_ = 0;
  std::int32_t ring_blocks_ = 0;
  std::int32_t reserved_ = 0;
  std::int32_t free_slots_ = 0;
  std::uint64_t clock_ = 0;
  Plane global_planes_[n_global_layers > 0 ? n_global_layers : 1]{};
  Plane local_planes_[n_local_layers > 0 ? n_local_layers : 1]{};
  std::unique_ptr<std::int32_t[]> tables_;
  std::unique_ptr<std::int32_t[]> ring_ids_;
  std::unique_ptr<slot_state[]> slots_;
  std::unique_ptr<prefix_entry[]> entries_;
  std::unique_ptr<std::int32_t[]> entry_tokens_;
  std::unique_ptr<std::int32_t[]> entry_blocks_;
  std::unique_ptr<std::uint16_t[]> entry_refs_;  // scratch of cached_only_blocks(), all zero between calls
};

}  // namespace gemmaforge
