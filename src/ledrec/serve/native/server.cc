#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/support/server_interceptor.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "ledrec.grpc.pb.h"
#include "ledrec.pb.h"

namespace ledrec {

namespace {

constexpr const char* kService = "ledrec.v1.Recommender";
constexpr const char* kRecommend = "ledrec.v1.Recommender/Recommend";
constexpr const char* kBanner = "ledrec.v1.Recommender/Banner";
constexpr const char* kSimilar = "ledrec.v1.Recommender/Similar";

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// --no-reflection: libgrpc++_reflection registers its plugin for every server of the process as it loads
// (a static initializer); this option takes it out of one server's builder
class NoReflectionOption : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const auto& p) { return p->name() == "proto_server_reflection"; }),
                   plugins->end());
  }
};

// The other methods (health, reflection), as the Python front treats them: a request that does not decode
// gets INVALID_ARGUMENT (gRPC's health service answers INTERNAL to an undecodable Watch), and every RPC is
// counted by final code. The Recommender's own methods do both on their hot path (no interceptor is made for
// them). (gRPC's reflection service ends a stream whose message does not decode as if it were complete: OK.)
class CountingInterceptor : public grpc::experimental::Interceptor {
 public:
  CountingInterceptor(Metrics* metrics, std::string method) : metrics_(metrics), method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (status.error_message() == "could not parse request") {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the request is not a valid " + method_ + " message");
        methods->ModifySendStatus(status);
      }
      metrics_->count(method_, static_cast<int>(status.error_code()));
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  std::string method_;
};

class CountingFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    std::string method = info->method();
    if (!method.empty() && method[0] == '/') method.erase(0, 1);
    if (method.rfind(kService, 0) == 0) return nullptr;
    return new CountingInterceptor(metrics_, std::move(method));
  }

 private:
  Metrics* metrics_;
};

std::string read_all(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

void write_all(const google::protobuf::MessageLite& message, grpc::ByteBuffer* out) {
  std::string bytes;
  message.SerializeToString(&bytes);
  grpc::Slice slice(std::move(bytes));
  *out = grpc::ByteBuffer(&slice, 1);
}

std::string bounded(std::string message) {  // messages to clients: at most 500 characters, as the Python front
  if (message.size() > 500) message.resize(500);
  return message;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ metrics
Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); i++) counts_[i].store(0);
}

void Histogram::observe(double seconds) {
  const std::size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();  // le
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (std::size_t i = 0; i < out.size(); i++) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

void Metrics::count(const std::string& method, int code) {
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  if (method == kRecommend) {
    recommend_[code].fetch_add(1, std::memory_order_relaxed);
  } else if (method == kBanner) {
    banner_[code].fetch_add(1, std::memory_order_relaxed);
  } else {
    std::lock_guard<std::mutex> lock(mutex_);
    other_[{method, code}]++;
  }
}

std::map<std::pair<std::string, int>, uint64_t> Metrics::requests() const {
  std::map<std::pair<std::string, int>, uint64_t> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    out = other_;
  }
  for (int c = 0; c < kCodes; c++) {
    if (uint64_t n = recommend_[c].load()) out[{kRecommend, c}] = n;
    if (uint64_t n = banner_[c].load()) out[{kBanner, c}] = n;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ the service
using Base = v1::Recommender::WithRawCallbackMethod_Recommend<v1::Recommender::WithRawCallbackMethod_Banner<
    v1::Recommender::WithRawCallbackMethod_Similar<v1::Recommender::Service>>>;

class NativeServer::Service final : public Base {
 public:
  explicit Service(NativeServer* owner) : owner_(owner) {
    if (owner->options_.floor_k > 0) {
      v1::RecommendResponse fixed;
      for (int i = 0; i < owner->options_.floor_k; i++) {
        auto* item = fixed.add_items();
        item->set_item_id(std::to_string(100000 + i));
        item->set_score(1.0f);
      }
      fixed.set_model_version("floor");
      fixed.SerializeToString(&fixed_answer_);
    }
  }

  void set_routes(std::shared_ptr<const Routes> routes) {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_ = std::move(routes);
  }

  grpc::ServerUnaryReactor* Recommend(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    const auto t0 = std::chrono::steady_clock::now();
    owner_->last_activity_ns_.store(now_ns(), std::memory_order_relaxed);
    const int running = owner_->in_flight_.fetch_add(1) + 1;
    grpc::Status status = answer(*request, response, running, t0);
    owner_->metrics_->count(kRecommend, static_cast<int>(status.error_code()));
    reactor->Finish(status);
    owner_->in_flight_.fetch_sub(1);
    owner_->last_activity_ns_.store(now_ns(), std::memory_order_relaxed);
    return reactor;
  }

  grpc::ServerUnaryReactor* Similar(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    owner_->last_activity_ns_.store(now_ns(), std::memory_order_relaxed);
    grpc::Status status = similar(*request, response);
    owner_->metrics_->count(kSimilar, static_cast<int>(status.error_code()));
    reactor->Finish(status);
    owner_->last_activity_ns_.store(now_ns(), std::memory_order_relaxed);
    return reactor;
  }

  grpc::ServerUnaryReactor* Banner(grpc::CallbackServerContext* context, const grpc::ByteBuffer*,
                                   grpc::ByteBuffer*) override {
    auto* reactor = context->DefaultReactor();
    grpc::Status status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the native front serves Recommend; the two-stage Banner call: ledrec serve DIR --front python");
    owner_->metrics_->count(kBanner, static_cast<int>(status.error_code()));
    reactor->Finish(status);
    return reactor;
  }

 private:
  grpc::Status answer(const grpc::ByteBuffer& raw, grpc::ByteBuffer* response, int running,
                      std::chrono::steady_clock::time_point t0) {
    const ServerOptions& options = owner_->options_;
    if (options.max_concurrent_rpcs > 0 && running > options.max_concurrent_rpcs)
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "too many requests in progress"};
    const std::size_t size = raw.Length();
    if (size > static_cast<std::size_t>(options.max_request_bytes))
      return {grpc::StatusCode::INVALID_ARGUMENT, "request of " + std::to_string(size) + " bytes; at most " +
                                                      std::to_string(options.max_request_bytes)};
    v1::RecommendRequest request;
    const std::string bytes = read_all(raw);
    if (!request.ParseFromString(bytes))
      return {grpc::StatusCode::INVALID_ARGUMENT, std::string("the request is not a valid ") + kRecommend + " message"};
    if (!fixed_answer_.empty()) {
      grpc::Slice slice(fixed_answer_);
      *response = grpc::ByteBuffer(&slice, 1);
      return grpc::Status::OK;
    }
    std::shared_ptr<const Model> model;
    if (grpc::Status routed = route(request.partition(), model); !routed.ok()) return routed;
    std::vector<std::string_view> history(request.item_ids().begin(), request.item_ids().end());
    std::vector<std::string_view> allowed(request.allowed_item_ids().begin(), request.allowed_item_ids().end());
    Answer answer;
    try {
      answer = model->recommend(request.partition(), history, request.k(), request.exclude_seen(),
                                allowed.empty() ? nullptr : &allowed);
    } catch (const RequestError& e) {
      return {grpc::StatusCode::INVALID_ARGUMENT, bounded(e.what())};
    }
    v1::RecommendResponse reply;
    reply.set_model_version(model->version());
    reply.set_unknown_items(answer.unknown);
    reply.set_cold_start(answer.cold);
    auto* items = reply.mutable_items();
    items->Reserve(static_cast<int>(answer.items.size()));
    for (std::size_t i = 0; i < answer.items.size(); i++) {
      auto* item = items->Add();
      item->set_item_id(model->id(answer.items[i]));
      item->set_score(answer.scores[i]);
    }
    write_all(reply, response);
    Metrics& m = *owner_->metrics_;
    m.embed.observe(answer.embed_s);
    m.knn.observe(answer.knn_s);
    m.total.observe(seconds_between(t0, std::chrono::steady_clock::now()));
    if (answer.unknown) m.unknown_items.fetch_add(static_cast<uint64_t>(answer.unknown), std::memory_order_relaxed);
    if (answer.cold) m.cold_starts.fetch_add(1, std::memory_order_relaxed);
    return grpc::Status::OK;
  }

  // the model that answers a partition; this request finishes on it, whatever a reload does meanwhile
  grpc::Status route(const std::string& partition, std::shared_ptr<const Model>& model) {
    std::shared_ptr<const Routes> routes;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      routes = routes_;
    }
    if (routes && !routes->routed) {
      model = routes->single;
    } else if (routes) {
      auto it = routes->by_catalogue.find(partition);
      if (it == routes->by_catalogue.end() && partition.empty() && routes->by_catalogue.size() == 1)
        it = routes->by_catalogue.begin();  // one catalogue: need not be named
      if (it == routes->by_catalogue.end())
        return {grpc::StatusCode::INVALID_ARGUMENT,
                bounded("unknown partition " + clip(partition) + "; this server has " +
                        std::to_string(routes->by_catalogue.size()) + " catalogues")};
      model = it->second;
    }
    if (!model) return {grpc::StatusCode::UNAVAILABLE, "no model has passed its self-check yet"};
    return grpc::Status::OK;
  }

  grpc::Status similar(const grpc::ByteBuffer& raw, grpc::ByteBuffer* response) {
    const std::size_t size = raw.Length();
    if (size > static_cast<std::size_t>(owner_->options_.max_request_bytes))
      return {grpc::StatusCode::INVALID_ARGUMENT, "request of " + std::to_string(size) + " bytes; at most " +
                                                      std::to_string(owner_->options_.max_request_bytes)};
    v1::SimilarRequest request;
    if (!request.ParseFromString(read_all(raw)))
      return {grpc::StatusCode::INVALID_ARGUMENT, std::string("the request is not a valid ") + kSimilar + " message"};
    std::shared_ptr<const Model> model;
    if (grpc::Status routed = route(request.partition(), model); !routed.ok()) return routed;
    Answer answer;
    try {
      answer = model->similar(request.partition(), request.item_id(), request.k());
    } catch (const NotFoundError& e) {
      return {grpc::StatusCode::NOT_FOUND, bounded(e.what())};
    } catch (const NotServedError& e) {
      return {grpc::StatusCode::FAILED_PRECONDITION, bounded(e.what())};
    } catch (const RequestError& e) {
      return {grpc::StatusCode::INVALID_ARGUMENT, bounded(e.what())};
    }
    v1::SimilarResponse reply;
    reply.set_model_version(model->version());
    auto* items = reply.mutable_items();
    items->Reserve(static_cast<int>(answer.items.size()));
    for (std::size_t i = 0; i < answer.items.size(); i++) {
      auto* item = items->Add();
      item->set_item_id(model->id(answer.items[i]));
      item->set_score(answer.scores[i]);
    }
    write_all(reply, response);
    return grpc::Status::OK;
  }

  NativeServer* owner_;
  std::mutex mutex_;
  std::shared_ptr<const Routes> routes_;
  std::string fixed_answer_;
};

// ------------------------------------------------------------------------------------------------ the server
NativeServer::NativeServer(ServerOptions options)
    : options_(std::move(options)), metrics_(std::make_unique<Metrics>(options_.buckets)) {
  service_ = std::make_unique<Service>(this);
}

NativeServer::~NativeServer() {
  if (server_) stop(0.0);
}

int NativeServer::start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!options_.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl(options_.tls_client_ca.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = options_.tls_client_ca;
    ssl.pem_key_cert_pairs.push_back({options_.tls_key, options_.tls_cert});
    credentials = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  builder.AddListeningPort(options_.address, credentials, &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, options_.reuseport ? 1 : 0);
  builder.SetMaxReceiveMessageSize(4 * options_.max_request_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, options_.keepalive_time_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options_.keepalive_timeout_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, options_.max_connection_idle_ms);
  if (options_.max_connection_age_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, options_.max_connection_age_ms);
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, options_.max_connection_age_grace_ms);
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();  // (idempotent: the static initializer's)
  if (!options_.reflection) builder.SetOption(std::make_unique<NoReflectionOption>());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<CountingFactory>(metrics_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    throw std::runtime_error("cannot bind " + options_.address);
  }
  set_serving(false);
  return port;
}

void NativeServer::set_routes(std::shared_ptr<const Routes> routes) { service_->set_routes(std::move(routes)); }

void NativeServer::set_serving(bool serving) {
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving);
  health->SetServingStatus(kService, serving);
}

void NativeServer::enter_shutdown() {
  if (server_) server_->GetHealthCheckService()->Shutdown();
}

double NativeServer::idle_s() const {
  return static_cast<double>(now_ns() - last_activity_ns_.load(std::memory_order_relaxed)) * 1e-9;
}

void NativeServer::stop(double grace_s) {
  if (!server_) return;
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, grace_s) * 1e6));
  server_->Shutdown(deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace ledrec
