// One served model on the native front: the request path of ledrec.serve.retriever.Retriever.recommend
// (history ids -> user vector -> top-k of a catalogue, exclusions, allowed lists, cold start), in C++ and with
// the same answers to the bit. Built by the Python loader from arrays it has validated and a graph it has
// built or verified (ledrec.serve.native), immutable afterwards: any number of threads may answer at once.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hnswlib {
template <typename T>
class HierarchicalNSW;
template <typename T>
class SpaceInterface;
}  // namespace hnswlib

namespace ledrec {

// A request the service refuses (INVALID_ARGUMENT); the message says why (Python: RequestError).
class RequestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A request about an item the model does not know (NOT_FOUND; Python: UnknownItemError).
class NotFoundError : public RequestError {
 public:
  using RequestError::RequestError;
};

// A call this model was built without (FAILED_PRECONDITION; Python: NotServedError): Similar under --no-similar.
class NotServedError : public RequestError {
 public:
  using RequestError::RequestError;
};

struct Limits {
  int max_k = 1000;
  int max_history = 1000;
  int max_allowed = 100000;
};

struct Answer {
  std::vector<int64_t> items;  // model item indices, best first
  std::vector<float> scores;
  int32_t unknown = 0;  // history ids the model does not know
  bool cold = false;    // no known history item: the catalogue's highest-bias items
  double embed_s = 0.0, knn_s = 0.0;
};

// One catalogue (partition) of a model: its items, their [v; b] rows, its cold-start order and its index
// (an hnswlib graph, or exact search when there is none).
struct Catalogue {
  Catalogue();
  ~Catalogue();
  std::vector<int64_t> items;  // model item indices, sorted
  std::vector<float> mips;     // (n, D) [v; b]
  std::vector<int64_t> cold;   // model item indices by bias, best first (at most max_k)
  std::vector<float> cold_scores;
  bool nn = false;  // graph form: the MIPS -> nearest-neighbour reduction (else inner product)
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;  // null: exact search
};

class Model {
 public:
  Model(std::vector<std::string> ids, std::vector<float> encoder, std::size_t dim, std::vector<double> query_map,
        bool mean, std::string version, Limits limits);
  ~Model();

  // Adds a catalogue; `graph_path`: an hnswlib file of its rows in `form` ("ip" or "nn"), "" for exact search.
  void add_catalogue(const std::string& name, std::vector<int64_t> items, std::vector<float> mips,
                     std::vector<int64_t> cold, std::vector<float> cold_scores, const std::string& graph_path,
                     const std::string& form, std::size_t ef_search);

  // The Similar call's index of a catalogue already added: its items with a similarity vector, their rows
  // [w; 0] and a graph of them in the "ip" form ("" for exact search). `similarity`: every item's unit vector
  // (n, dim), once per model, before the first catalogue's.
  void set_similarity(std::vector<float> similarity);
  void add_similar(const std::string& name, std::vector<int64_t> items, std::vector<float> rows,
                   const std::string& graph_path, std::size_t ef_search);

  // Retriever.similar, to the bit: the k items of a catalogue most alike to an item (of any catalogue), the
  // item itself never, none for an item with a zero vector. Throws RequestError, NotFoundError, NotServedError.
  Answer similar(std::string_view partition, std::string_view item_id, int k) const;

  // Retriever.recommend, to the bit. `allowed` null: no allowed list. Throws RequestError.
  Answer recommend(std::string_view partition, const std::vector<std::string_view>& history, int k,
                   bool exclude_seen, const std::vector<std::string_view>* allowed) const;

  const std::string& id(int64_t item) const { return ids_[static_cast<std::size_t>(item)]; }
  const std::string& version() const { return version_; }
  std::size_t n_items() const { return ids_.size(); }
  std::size_t n_catalogues() const { return catalogues_.size(); }
  bool has_catalogue(std::string_view name) const { return by_name_.count(name) != 0; }

 private:
  // the catalogue a request's partition names ("" names the only one); RequestError for another
  const Catalogue& resolve(std::string_view partition) const { return *catalogues_[resolve_index(partition)]; }
  std::size_t resolve_index(std::string_view partition) const;
  void search(const Catalogue& c, const float* mips_query, int k, const std::vector<int64_t>& seen_positions,
              Answer& out) const;

  std::vector<std::string> ids_;
  std::unordered_map<std::string_view, int64_t> index_;  // views into ids_
  std::vector<float> encoder_;                           // (n, d)
  std::size_t d_;
  std::vector<double> query_map_;  // (d, d); empty: the identity
  bool mean_;
  std::string version_;
  Limits limits_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Catalogue>> catalogues_;
  std::unordered_map<std::string_view, std::size_t> by_name_;  // views into names_
  std::vector<float> similarity_;                              // (n, d) unit rows; empty: no Similar call
  std::vector<std::unique_ptr<Catalogue>> similar_;            // by catalogue, as catalogues_ (null: not added)
};

// Client input as it may be quoted back in an error (Python: ledrec.serve.retriever.clip): repr'd, cut.
std::string clip(std::string_view text, std::size_t limit = 64);

}  // namespace ledrec
