// ledrec.serve._native: the native front as a Python extension. Python (ledrec.serve.native) validates and
// self-checks what it hands over; this module only answers. Every call that works releases the GIL, and the
// gRPC threads never take it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernel.h"
#include "model.h"
#include "server.h"

namespace py = pybind11;
using ledrec::Model;
using ledrec::NativeServer;

namespace {

template <typename T>
std::vector<T> to_vector(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

std::vector<std::string_view> views(const std::vector<std::string>& strings) {
  return {strings.begin(), strings.end()};
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "The native data plane of ledrec serve (see ledrec.serve.native).";
  auto request_error = py::register_exception<ledrec::RequestError>(m, "RequestError", PyExc_ValueError);
  // (registered after their base: pybind11 tries the translators last registered first)
  py::register_exception<ledrec::NotFoundError>(m, "NotFoundError", request_error.ptr());
  py::register_exception<ledrec::NotServedError>(m, "NotServedError", request_error.ptr());

  m.def(
      "canonical_dot",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> rows,
         py::array_t<float, py::array::c_style | py::array::forcecast> query) {
        if (rows.ndim() != 2 || query.ndim() != 1 || rows.shape(1) != query.shape(0))
          throw std::invalid_argument("rows (n, D) and a query (D,)");
        const auto n = static_cast<std::size_t>(rows.shape(0)), D = static_cast<std::size_t>(rows.shape(1));
        py::array_t<float> out(static_cast<py::ssize_t>(n));
        std::vector<double> scratch(D);
        for (std::size_t i = 0; i < n; i++)
          out.mutable_data()[i] = ledrec::canonical_dot(rows.data() + i * D, query.data(), D, scratch.data());
        return out;
      },
      "The served score of each row: ledrec.export.mips.canonical_dot, in C++.");
  m.def(
      "user_vector",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> encoder, std::vector<int64_t> items, bool mean,
         std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>> query_map) {
        const auto d = static_cast<std::size_t>(encoder.shape(1));
        py::array_t<float> out(static_cast<py::ssize_t>(d));
        std::vector<double> scratch(3 * d + items.size() + 1);
        ledrec::user_vector(encoder.data(), d, items.data(), items.size(), mean,
                            query_map ? query_map->data() : nullptr, out.mutable_data(), scratch.data());
        return out;
      },
      py::arg("encoder"), py::arg("items"), py::arg("mean"), py::arg("query_map") = py::none(),
      "ServingModel.user_vector, in C++.");

  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def(py::init([](std::vector<std::string> ids, py::array_t<float, py::array::c_style | py::array::forcecast> encoder,
                       std::optional<py::array_t<double, py::array::c_style | py::array::forcecast>> query_map,
                       bool mean, std::string version, int max_k, int max_history, int max_allowed) {
             if (encoder.ndim() != 2) throw std::invalid_argument("encoder: (items, dim)");
             auto dim = static_cast<std::size_t>(encoder.shape(1));
             std::vector<double> qmap = query_map ? to_vector<double>(*query_map) : std::vector<double>{};
             return std::make_shared<Model>(std::move(ids), to_vector<float>(encoder), dim, std::move(qmap), mean,
                                            std::move(version), ledrec::Limits{max_k, max_history, max_allowed});
           }),
           py::arg("ids"), py::arg("encoder"), py::arg("query_map"), py::arg("mean"), py::arg("version"),
           py::arg("max_k"), py::arg("max_history"), py::arg("max_allowed"))
      .def(
          "add_catalogue",
          [](Model& self, const std::string& name, py::array_t<int64_t, py::array::c_style | py::array::forcecast> items,
             py::array_t<float, py::array::c_style | py::array::forcecast> mips,
             py::array_t<int64_t, py::array::c_style | py::array::forcecast> cold,
             py::array_t<float, py::array::c_style | py::array::forcecast> cold_scores, const std::string& graph_path,
             const std::string& form, std::size_t ef_search) {
            auto i = to_vector<int64_t>(items);
            auto v = to_vector<float>(mips);
            auto c = to_vector<int64_t>(cold);
            auto s = to_vector<float>(cold_scores);
            py::gil_scoped_release release;  // (a graph of a million items loads for seconds)
            self.add_catalogue(name, std::move(i), std::move(v), std::move(c), std::move(s), graph_path, form,
                               ef_search);
          },
          py::arg("name"), py::arg("items"), py::arg("mips"), py::arg("cold"), py::arg("cold_scores"),
          py::arg("graph_path"), py::arg("form"), py::arg("ef_search"))
      .def(
          "recommend",
          [](const Model& self, const std::string& partition, const std::vector<std::string>& history, int k,
             bool exclude_seen, std::optional<std::vector<std::string>> allowed) {
            ledrec::Answer answer;
            {
              py::gil_scoped_release release;
              auto h = views(history);
              std::vector<std::string_view> a = allowed ? views(*allowed) : std::vector<std::string_view>{};
              answer = self.recommend(partition, h, k, exclude_seen, allowed ? &a : nullptr);
            }
            std::vector<std::string> ids;
            ids.reserve(answer.items.size());
            for (int64_t item : answer.items) ids.push_back(self.id(item));
            return py::make_tuple(ids, answer.scores, answer.unknown, answer.cold,
                                  py::dict(py::arg("embed") = answer.embed_s, py::arg("knn") = answer.knn_s));
          },
          py::arg("partition"), py::arg("history"), py::arg("k"), py::arg("exclude_seen") = true,
          py::arg("allowed") = py::none(),
          "(item ids, scores, unknown items, cold start, timings): Retriever.recommend, in C++.")
      .def(
          "set_similarity",
          [](Model& self, py::array_t<float, py::array::c_style | py::array::forcecast> similarity) {
            self.set_similarity(to_vector<float>(similarity));
          },
          py::arg("similarity"))
      .def(
          "add_similar",
          [](Model& self, const std::string& name, py::array_t<int64_t, py::array::c_style | py::array::forcecast> items,
             py::array_t<float, py::array::c_style | py::array::forcecast> rows, const std::string& graph_path,
             std::size_t ef_search) {
            auto i = to_vector<int64_t>(items);
            auto r = to_vector<float>(rows);
            py::gil_scoped_release release;
            self.add_similar(name, std::move(i), std::move(r), graph_path, ef_search);
          },
          py::arg("name"), py::arg("items"), py::arg("rows"), py::arg("graph_path"), py::arg("ef_search"))
      .def(
          "similar",
          [](const Model& self, const std::string& partition, const std::string& item_id, int k) {
            ledrec::Answer answer;
            {
              py::gil_scoped_release release;
              answer = self.similar(partition, item_id, k);
            }
            std::vector<std::string> ids;
            ids.reserve(answer.items.size());
            for (int64_t item : answer.items) ids.push_back(self.id(item));
            return py::make_tuple(ids, answer.scores, py::dict(py::arg("knn") = answer.knn_s));
          },
          py::arg("partition"), py::arg("item_id"), py::arg("k"),
          "(item ids, scores, timings): Retriever.similar, in C++.")
      .def_property_readonly("version", &Model::version)
      .def_property_readonly("n_items", &Model::n_items)
      .def_property_readonly("n_catalogues", &Model::n_catalogues);

  py::class_<NativeServer>(m, "Server")
      .def(py::init([](const std::string& address, bool reuseport, int max_request_bytes, bool reflection,
                       const std::string& tls_cert, const std::string& tls_key, const std::string& tls_client_ca,
                       int max_concurrent_rpcs, int keepalive_time_ms, int keepalive_timeout_ms,
                       int max_connection_idle_ms, int max_connection_age_ms, int max_connection_age_grace_ms,
                       std::vector<double> buckets, int floor_k) {
             ledrec::ServerOptions o;
             o.address = address;
             o.reuseport = reuseport;
             o.max_request_bytes = max_request_bytes;
             o.reflection = reflection;
             o.tls_cert = tls_cert;
             o.tls_key = tls_key;
             o.tls_client_ca = tls_client_ca;
             o.max_concurrent_rpcs = max_concurrent_rpcs;
             o.keepalive_time_ms = keepalive_time_ms;
             o.keepalive_timeout_ms = keepalive_timeout_ms;
             o.max_connection_idle_ms = max_connection_idle_ms;
             o.max_connection_age_ms = max_connection_age_ms;
             o.max_connection_age_grace_ms = max_connection_age_grace_ms;
             o.buckets = std::move(buckets);
             o.floor_k = floor_k;
             return std::make_unique<NativeServer>(std::move(o));
           }),
           py::arg("address"), py::arg("reuseport") = false, py::arg("max_request_bytes") = 256 * 1024,
           py::arg("reflection") = true, py::arg("tls_cert") = "", py::arg("tls_key") = "",
           py::arg("tls_client_ca") = "", py::arg("max_concurrent_rpcs") = 1000, py::arg("keepalive_time_ms") = 60000,
           py::arg("keepalive_timeout_ms") = 20000, py::arg("max_connection_idle_ms") = 300000,
           py::arg("max_connection_age_ms") = 0, py::arg("max_connection_age_grace_ms") = 0,
           py::arg("buckets") = std::vector<double>{}, py::arg("floor_k") = 0)
      .def("start", &NativeServer::start, py::call_guard<py::gil_scoped_release>())
      .def(
          "set_routes",
          [](NativeServer& self, bool routed, std::shared_ptr<Model> single,
             std::map<std::string, std::shared_ptr<Model>> by_catalogue) {
            auto routes = std::make_shared<ledrec::Routes>();
            routes->routed = routed;
            routes->single = std::move(single);
            for (auto& [name, model] : by_catalogue) routes->by_catalogue.emplace(name, std::move(model));
            self.set_routes(std::move(routes));
          },
          py::arg("routed"), py::arg("single"), py::arg("by_catalogue"))
      .def("set_serving", &NativeServer::set_serving)
      .def("enter_shutdown", &NativeServer::enter_shutdown)
      .def("stop", &NativeServer::stop, py::arg("grace_s"), py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("in_flight", &NativeServer::in_flight)
      .def_property_readonly("idle_s", &NativeServer::idle_s)
      .def("metrics", [](NativeServer& self) {
        auto& m = self.metrics();
        py::dict requests;
        for (const auto& [key, n] : m.requests()) requests[py::make_tuple(key.first, key.second)] = n;
        auto histogram = [](const ledrec::Histogram& h) { return py::make_tuple(h.counts(), h.sum()); };
        py::dict stages;
        stages["user_embedding"] = histogram(m.embed);
        stages["knn"] = histogram(m.knn);
        stages["total"] = histogram(m.total);
        py::dict out;
        out["requests"] = requests;
        out["stages"] = stages;
        out["unknown_items"] = m.unknown_items.load();
        out["cold_starts"] = m.cold_starts.load();
        return out;
      });
}
