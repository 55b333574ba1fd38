// The native front's data plane: a gRPC C++ server answering ledrec.v1.Recommender/Recommend from the models
// the Python manager hands it (set_routes), with the standard health service and reflection, TLS, request
// limits, and counters and stage histograms that the Python control plane exports under the Python front's
// Prometheus names. No Python object is touched on the request path: its threads never take the GIL.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "model.h"

namespace grpc {
class Server;
}

namespace ledrec {

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port (port 0: one the kernel picks)
  bool reuseport = false;
  int max_request_bytes = 256 * 1024;  // larger: INVALID_ARGUMENT; above 4x gRPC itself refuses
  bool reflection = true;
  std::string tls_cert, tls_key, tls_client_ca;  // PEM contents; a CA: client certificates required
  int max_concurrent_rpcs = 1000;                // Recommend calls in progress; more: RESOURCE_EXHAUSTED (0: none)
  int keepalive_time_ms = 60000, keepalive_timeout_ms = 20000, max_connection_idle_ms = 300000;
  int max_connection_age_ms = 0, max_connection_age_grace_ms = 0;  // 0: never
  std::vector<double> buckets;                                     // histogram bounds, seconds (Python's BUCKETS)
  int floor_k = 0;  // > 0: the native floor, a handler answering a fixed k-item response and nothing else
};

// What answers a request's partition: one model (an export: it holds its catalogues itself) or one model per
// catalogue of a published root (null: registered, nothing loaded yet). Immutable once handed over.
struct Routes {
  bool routed = false;
  std::shared_ptr<const Model> single;
  std::unordered_map<std::string, std::shared_ptr<const Model>> by_catalogue;
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double seconds);
  std::vector<uint64_t> counts() const;  // per bucket (last: above every bound), not cumulative
  double sum() const { return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> sum_ns_{0};
};

struct Metrics {
  explicit Metrics(const std::vector<double>& bounds) : embed(bounds), knn(bounds), total(bounds) {}
  void count(const std::string& method, int code);
  std::map<std::pair<std::string, int>, uint64_t> requests() const;
  Histogram embed, knn, total;
  std::atomic<uint64_t> unknown_items{0}, cold_starts{0};

 private:
  static constexpr int kCodes = 17;
  std::atomic<uint64_t> recommend_[kCodes] = {}, banner_[kCodes] = {};  // the hot methods: no lock
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> other_;
};

class NativeServer {
 public:
  explicit NativeServer(ServerOptions options);
  ~NativeServer();
  int start();  // binds and serves; the port bound (throws std::runtime_error when it cannot bind)
  void set_routes(std::shared_ptr<const Routes> routes);
  void set_serving(bool serving);  // health of "" and ledrec.v1.Recommender
  void enter_shutdown();           // health NOT_SERVING for good (SIGTERM)
  void stop(double grace_s);       // answer what is in progress for at most grace_s, then close
  int in_flight() const { return in_flight_.load(); }
  double idle_s() const;  // since the last Recommend started or finished
  Metrics& metrics() { return *metrics_; }

  class Service;

 private:
  ServerOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<int> in_flight_{0};
  std::atomic<int64_t> last_activity_ns_{0};
  friend class Service;
};

}  // namespace ledrec
