// ledrec-floor: the native front's do-nothing server as a program of its own, for one measurement: does the
// native front lose anything by living inside a Python process (the extension ledrec.serve._native, whose
// floor mode runs this same handler) rather than being a binary supervised by Python? docs/serving.md,
// "Why an extension"; benchmarks/native_front_choice.py runs both against the same load generator.
//
//   ledrec-floor --port-file FILE [--k 20]: binds 127.0.0.1:0, writes the port to FILE, serves until killed.
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "ledrec.grpc.pb.h"

namespace {

using Base = ledrec::v1::Recommender::WithRawCallbackMethod_Recommend<ledrec::v1::Recommender::Service>;

class Floor final : public Base {
 public:
  explicit Floor(int k) {
    ledrec::v1::RecommendResponse fixed;
    for (int i = 0; i < k; i++) {
      auto* item = fixed.add_items();
      item->set_item_id(std::to_string(100000 + i));
      item->set_score(1.0f);
    }
    fixed.set_model_version("floor");
    fixed.SerializeToString(&answer_);
  }

  grpc::ServerUnaryReactor* Recommend(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    auto* reactor = context->DefaultReactor();
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (request->Dump(&slices).ok())
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    ledrec::v1::RecommendRequest parsed;  // decoded, as the extension's floor does
    if (!parsed.ParseFromString(bytes)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a request"));
      return reactor;
    }
    grpc::Slice slice(answer_);
    *response = grpc::ByteBuffer(&slice, 1);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  std::string answer_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string port_file;
  int k = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--port-file") port_file = argv[i + 1];
    else if (flag == "--k") k = std::stoi(argv[i + 1]);
  }
  if (port_file.empty()) {
    std::cerr << "usage: ledrec-floor --port-file FILE [--k 20]\n";
    return 2;
  }
  Floor service(k);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) return 1;
  std::ofstream(port_file) << port << "\n";
  server->Wait();
  return 0;
}
