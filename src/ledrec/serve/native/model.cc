#include "model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>
#include <unordered_set>

#include "hnswlib/hnswlib.h"
#include "kernel.h"

namespace ledrec {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

thread_local std::vector<double> scratch;  // per thread: user vectors and dot products

double* scratch_for(std::size_t n) {
  if (scratch.size() < n) scratch.resize(n);
  return scratch.data();
}

// positions in the sorted `catalogue` of those `items` that belong to it, in the order of `items`
// (retriever._positions)
std::vector<int64_t> positions_of(const std::vector<int64_t>& catalogue, const std::vector<int64_t>& items) {
  std::vector<int64_t> out;
  out.reserve(items.size());
  for (int64_t item : items) {
    auto it = std::lower_bound(catalogue.begin(), catalogue.end(), item);
    if (it != catalogue.end() && *it == item) out.push_back(it - catalogue.begin());
  }
  return out;
}

// the k best of `scores` (position order breaks ties: numpy's stable argsort of -scores), written to out
void top_k_stable(const std::vector<float>& scores, std::size_t k, std::vector<std::size_t>& order) {
  order.resize(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto better = [&](std::size_t a, std::size_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); };
  if (k < order.size()) {
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(), better);
    order.resize(k);
  } else {
    std::sort(order.begin(), order.end(), better);
  }
}

}  // namespace

Catalogue::Catalogue() = default;
Catalogue::~Catalogue() = default;

Model::Model(std::vector<std::string> ids, std::vector<float> encoder, std::size_t dim, std::vector<double> query_map,
             bool mean, std::string version, Limits limits)
    : ids_(std::move(ids)),
      encoder_(std::move(encoder)),
      d_(dim),
      query_map_(std::move(query_map)),
      mean_(mean),
      version_(std::move(version)),
      limits_(limits) {
  if (encoder_.size() != ids_.size() * d_) throw std::invalid_argument("encoder: not (items, dim)");
  if (!query_map_.empty() && query_map_.size() != d_ * d_) throw std::invalid_argument("query map: not (dim, dim)");
  index_.reserve(ids_.size());
  for (std::size_t i = 0; i < ids_.size(); i++) index_.emplace(ids_[i], static_cast<int64_t>(i));
  if (index_.size() != ids_.size()) throw std::invalid_argument("item ids: duplicates");
}

Model::~Model() = default;

void Model::add_catalogue(const std::string& name, std::vector<int64_t> items, std::vector<float> mips,
                          std::vector<int64_t> cold, std::vector<float> cold_scores, const std::string& graph_path,
                          const std::string& form, std::size_t ef_search) {
  const std::size_t D = d_ + 1;
  if (mips.size() != items.size() * D) throw std::invalid_argument("catalogue " + name + ": rows not (n, dim + 1)");
  if (cold.size() != cold_scores.size()) throw std::invalid_argument("catalogue " + name + ": cold start sizes");
  if (by_name_.count(name)) throw std::invalid_argument("catalogue " + name + ": twice");
  for (int64_t item : items)
    if (item < 0 || static_cast<std::size_t>(item) >= ids_.size()) throw std::invalid_argument("item out of range");
  auto c = std::make_unique<Catalogue>();
  c->items = std::move(items);
  c->mips = std::move(mips);
  c->cold = std::move(cold);
  c->cold_scores = std::move(cold_scores);
  if (!graph_path.empty()) {
    c->nn = form == "nn";
    if (!c->nn && form != "ip") throw std::invalid_argument("graph form must be ip or nn, not " + form);
    // the same spaces as hnswlib's Python binding: 'ip' on [v; b], 'l2' on [v; b; sqrt(M^2 - |.|^2)]
    if (c->nn) {
      c->space = std::make_unique<hnswlib::L2Space>(D + 1);
    } else {
      c->space = std::make_unique<hnswlib::InnerProductSpace>(D);
    }
    c->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(c->space.get(), graph_path, false,
                                                                  std::max<std::size_t>(c->items.size(), 1));
    if (c->graph->getCurrentElementCount() != c->items.size())
      throw std::invalid_argument("catalogue " + name + ": the graph holds another number of items");
    c->graph->setEf(ef_search);
  }
  names_.push_back(name);
  by_name_.emplace(std::string_view(*std::prev(names_.end())), catalogues_.size());
  catalogues_.push_back(std::move(c));
  // (names_ may reallocate: rebuild the views)
  by_name_.clear();
  for (std::size_t i = 0; i < names_.size(); i++) by_name_.emplace(names_[i], i);
}

std::size_t Model::resolve_index(std::string_view partition) const {
  if (partition.empty() && catalogues_.size() == 1) return 0;  // one catalogue: need not be named
  auto it = by_name_.find(partition);
  if (it == by_name_.end())
    throw RequestError("unknown partition " + clip(partition) + "; this model serves " +
                       std::to_string(catalogues_.size()) + " partitions");
  return it->second;
}

void Model::set_similarity(std::vector<float> similarity) {
  if (similarity.size() != ids_.size() * d_) throw std::invalid_argument("similarity: not (items, dim)");
  if (!similar_.empty()) throw std::invalid_argument("similarity: set once, before any catalogue's index");
  similarity_ = std::move(similarity);
}

void Model::add_similar(const std::string& name, std::vector<int64_t> items, std::vector<float> rows,
                        const std::string& graph_path, std::size_t ef_search) {
  const std::size_t D = d_ + 1;
  if (similarity_.empty()) throw std::invalid_argument("add_similar: set_similarity first");
  auto at = by_name_.find(name);
  if (at == by_name_.end()) throw std::invalid_argument("add_similar: catalogue " + name + " not added");
  if (rows.size() != items.size() * D) throw std::invalid_argument("similar " + name + ": rows not (n, dim + 1)");
  for (int64_t item : items)
    if (item < 0 || static_cast<std::size_t>(item) >= ids_.size()) throw std::invalid_argument("item out of range");
  if (!std::is_sorted(items.begin(), items.end())) throw std::invalid_argument("similar " + name + ": items unsorted");
  auto c = std::make_unique<Catalogue>();
  c->items = std::move(items);
  c->mips = std::move(rows);
  if (!graph_path.empty()) {  // unit rows: inner product is the cosine, no reduction (Python's SIMILAR_PARAMS)
    c->space = std::make_unique<hnswlib::InnerProductSpace>(D);
    c->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(c->space.get(), graph_path, false,
                                                                  std::max<std::size_t>(c->items.size(), 1));
    if (c->graph->getCurrentElementCount() != c->items.size())
      throw std::invalid_argument("similar " + name + ": the graph holds another number of items");
    c->graph->setEf(ef_search);
  }
  if (similar_.size() < catalogues_.size()) similar_.resize(catalogues_.size());
  similar_[at->second] = std::move(c);
}

Answer Model::similar(std::string_view partition, std::string_view item_id, int k) const {
  if (similarity_.empty()) throw NotServedError("this server answers no Similar call (started with --no-similar)");
  if (!(0 < k && k <= limits_.max_k))
    throw RequestError("k must be in 1.." + std::to_string(limits_.max_k) + ", not " + std::to_string(k));
  const std::size_t at = resolve_index(partition);
  if (at >= similar_.size() || !similar_[at])
    throw NotServedError("this server answers no Similar call for partition " + clip(partition));
  const Catalogue& c = *similar_[at];
  auto it = index_.find(item_id);
  if (it == index_.end()) throw NotFoundError("unknown item " + clip(item_id));
  Answer out;
  const auto t0 = std::chrono::steady_clock::now();
  const float* w = &similarity_[static_cast<std::size_t>(it->second) * d_];
  if (std::any_of(w, w + d_, [](float x) { return x != 0.0f; })) {  // a zero vector is alike to nothing
    std::vector<float> query(w, w + d_);
    query.push_back(0.0f);  // [w; 0]
    search(c, query.data(), k, positions_of(c.items, {it->second}), out);
  }
  out.knn_s = seconds_since(t0);
  return out;
}

Answer Model::recommend(std::string_view partition, const std::vector<std::string_view>& history, int k,
                        bool exclude_seen, const std::vector<std::string_view>* allowed) const {
  if (!(0 < k && k <= limits_.max_k))
    throw RequestError("k must be in 1.." + std::to_string(limits_.max_k) + ", not " + std::to_string(k));
  if (history.size() > static_cast<std::size_t>(limits_.max_history))
    throw RequestError(std::to_string(history.size()) + " history items; at most " +
                       std::to_string(limits_.max_history) + " are accepted");
  if (allowed != nullptr && allowed->size() > static_cast<std::size_t>(limits_.max_allowed))
    throw RequestError(std::to_string(allowed->size()) + " allowed items; at most " +
                       std::to_string(limits_.max_allowed) + " are accepted");
  const Catalogue& c = resolve(partition);
  Answer out;
  const auto t0 = std::chrono::steady_clock::now();
  // the known ids, each once, in the order of first appearance (ServingModel.lookup)
  std::vector<int64_t> known;
  known.reserve(history.size());
  for (std::string_view id : history) {
    auto it = index_.find(id);
    if (it == index_.end()) {
      out.unknown++;
    } else if (std::find(known.begin(), known.end(), it->second) == known.end()) {
      known.push_back(it->second);
    }
  }
  const std::size_t D = d_ + 1;
  double* work = scratch_for(std::max(3 * d_ + known.size() + 1, D));
  std::vector<float> query(D);  // [q; 1]
  user_vector(encoder_.data(), d_, known.data(), known.size(), mean_,
              query_map_.empty() ? nullptr : query_map_.data(), query.data(), work);
  query[d_] = 1.0f;
  out.embed_s = seconds_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  out.cold = known.empty();
  if (allowed != nullptr) {  // exact over the allowed items of this catalogue (never another's)
    std::vector<int64_t> candidates;
    candidates.reserve(allowed->size());
    for (std::string_view id : *allowed) {
      auto it = index_.find(id);
      if (it != index_.end()) candidates.push_back(it->second);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::vector<int64_t> positions = positions_of(c.items, candidates);  // np.intersect1d(allowed, catalogue)
    std::vector<float> scores;
    std::vector<int64_t> kept;
    for (int64_t p : positions) {
      int64_t item = c.items[static_cast<std::size_t>(p)];
      if (exclude_seen && std::find(known.begin(), known.end(), item) != known.end()) continue;
      kept.push_back(item);
      scores.push_back(canonical_dot(&c.mips[static_cast<std::size_t>(p) * D], query.data(), D, work));
    }
    std::vector<std::size_t> order;
    top_k_stable(scores, static_cast<std::size_t>(k), order);
    for (std::size_t i : order) {
      out.items.push_back(kept[i]);
      out.scores.push_back(scores[i]);
    }
  } else if (out.cold) {  // the catalogue's highest-bias items (§6.2)
    const std::size_t n = std::min(static_cast<std::size_t>(k), c.cold.size());
    out.items.assign(c.cold.begin(), c.cold.begin() + static_cast<std::ptrdiff_t>(n));
    out.scores.assign(c.cold_scores.begin(), c.cold_scores.begin() + static_cast<std::ptrdiff_t>(n));
  } else {
    std::vector<int64_t> seen;
    if (exclude_seen) {
      std::vector<int64_t> sorted_known = known;
      seen = positions_of(c.items, known);
    }
    search(c, query.data(), k, seen, out);
  }
  out.knn_s = seconds_since(t1);
  return out;
}

void Model::search(const Catalogue& c, const float* mips_query, int k, const std::vector<int64_t>& seen,
                   Answer& out) const {
  const std::size_t D = d_ + 1, n_items = c.items.size();
  double* work = scratch_for(D);
  std::vector<int64_t> positions;
  std::vector<float> scores;
  if (!c.graph) {  // ExactIndex.search_excluding: every row scored, the excluded masked
    scores.resize(n_items);
    for (std::size_t i = 0; i < n_items; i++) scores[i] = canonical_dot(&c.mips[i * D], mips_query, D, work);
    for (int64_t p : seen) scores[static_cast<std::size_t>(p)] = -std::numeric_limits<float>::infinity();
    const int64_t kk = std::min<int64_t>(k, static_cast<int64_t>(n_items) - static_cast<int64_t>(seen.size()));
    if (kk <= 0) return;
    std::vector<std::size_t> order;
    top_k_stable(scores, static_cast<std::size_t>(kk), order);
    for (std::size_t i : order) {
      out.items.push_back(c.items[i]);
      out.scores.push_back(scores[i]);
    }
    return;
  }
  // Index.search_excluding: one more per excluded item, found in the graph's order (nearest first), the
  // excluded dropped, the rest scored exactly and sorted (stable)
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(k) + seen.size(), n_items);
  if (n == 0) return;
  std::vector<float> q(mips_query, mips_query + D);
  if (c.nn) q.push_back(0.0f);  // [q; 1; 0]
  auto found = c.graph->searchKnn(q.data(), n);
  std::vector<int64_t> labels(found.size());
  for (std::size_t i = labels.size(); i-- > 0;) {  // the heap's largest distance first: fill from the end
    labels[i] = static_cast<int64_t>(found.top().second);
    found.pop();
  }
  std::unordered_set<int64_t> excluded(seen.begin(), seen.end());
  for (int64_t p : labels)
    if (!excluded.count(p)) positions.push_back(p);
  scores.resize(positions.size());
  for (std::size_t i = 0; i < positions.size(); i++)
    scores[i] = canonical_dot(&c.mips[static_cast<std::size_t>(positions[i]) * D], mips_query, D, work);
  std::vector<std::size_t> order;
  top_k_stable(scores, static_cast<std::size_t>(k), order);
  for (std::size_t i : order) {
    out.items.push_back(c.items[static_cast<std::size_t>(positions[i])]);
    out.scores.push_back(scores[i]);
  }
}

std::string clip(std::string_view text, std::size_t limit) {
  std::string quoted = "'";
  for (unsigned char ch : text) {
    if (ch == '\'' || ch == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(ch);
    } else if (ch < 0x20 || ch == 0x7f) {
      static const char* hex = "0123456789abcdef";
      quoted += "\\x";
      quoted += hex[ch >> 4];
      quoted += hex[ch & 15];
    } else {
      quoted += static_cast<char>(ch);
    }
    if (quoted.size() > limit + 8) break;
  }
  quoted += "'";
  if (quoted.size() <= limit) return quoted;
  return quoted.substr(0, limit - 4) + "\xe2\x80\xa6'";  // an ellipsis, the closing quote kept
}

}  // namespace ledrec
