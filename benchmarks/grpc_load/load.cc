// ledrec-load: a native gRPC load generator for `ledrec bench serve --client cpp`.
//
// Why: the Python generator (grpc.aio) runs on the same two cores as the server, and its own time counts as
// "end-to-end latency". Against the same 1M-item server (2 processes, 1,000 QPS) this generator measured p50
// 912 µs where the Python one measured 1,353 µs (README, Table 4 with the native load generator).
//
// Requests come from a file written by ledrec.bench.serve: serialized ledrec.v1.RecommendRequest messages,
// each preceded by its length (uint32, little endian). Results: one JSON line on stdout (counts, elapsed) and
// raw float64 seconds in OUT.latency.f64 (and, open loop, OUT.lag.f64: how late each send left).
//
//   closed loop: --clients C requests in flight at all times, for --seconds; reports QPS.
//   open loop:   a request scheduled every 1/--rate seconds (absolute deadlines, clock_nanosleep); latency is
//                counted from the scheduled time, so a late sender cannot hide queueing (no coordinated omission).
//
// Before measuring, every connection makes --warmup sequential calls; with --wait the program then prints
// "warm" and waits for a line on stdin, so that the caller can read the server's metrics between the warm-up
// and the measured phase.
#include <grpcpp/grpcpp.h>
#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ledrec.grpc.pb.h"

using ledrec::v1::RecommendRequest;
using ledrec::v1::RecommendResponse;
using ledrec::v1::Recommender;

namespace {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sleep_until(double t) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - ts.tv_sec) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
  }
}

struct Args {
  std::string target, requests, mode = "closed", out;
  double seconds = 10, rate = 1000;
  int clients = 4, connections = 4, warmup = 200;
  bool wait = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "ledrec-load: " << why << "\n"
            << "usage: ledrec-load --target HOST:PORT --requests FILE --out PREFIX [--mode closed|open]\n"
            << "       [--seconds S] [--rate R] [--clients C] [--connections N] [--warmup N] [--wait]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + k);
      return argv[++i];
    };
    if (k == "--target") a.target = value();
    else if (k == "--requests") a.requests = value();
    else if (k == "--out") a.out = value();
    else if (k == "--mode") a.mode = value();
    else if (k == "--seconds") a.seconds = std::stod(value());
    else if (k == "--rate") a.rate = std::stod(value());
    else if (k == "--clients") a.clients = std::stoi(value());
    else if (k == "--connections") a.connections = std::stoi(value());
    else if (k == "--warmup") a.warmup = std::stoi(value());
    else if (k == "--wait") a.wait = true;
    else usage("unknown option " + k);
  }
  if (a.target.empty() || a.requests.empty() || a.out.empty()) usage("--target, --requests and --out are required");
  if (a.mode != "closed" && a.mode != "open") usage("--mode is closed or open");
  if (a.seconds <= 0 || a.rate <= 0 || a.clients < 1 || a.connections < 1 || a.warmup < 0) usage("bad number");
  return a;
}

std::vector<RecommendRequest> read_requests(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) usage("cannot open " + path);
  std::vector<RecommendRequest> out;
  uint32_t n;
  std::string buf;
  while (in.read(reinterpret_cast<char*>(&n), 4)) {
    buf.resize(n);
    if (!in.read(buf.data(), n)) usage(path + ": truncated message");
    out.emplace_back();
    if (!out.back().ParseFromString(buf)) usage(path + ": not a RecommendRequest");
  }
  if (out.empty()) usage(path + ": no requests");
  return out;
}

void write_f64(const std::string& path, const std::vector<double>& values) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
}

// One request in flight; its address is the completion-queue tag.
struct Call {
  grpc::ClientContext context;
  RecommendResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<RecommendResponse>> reader;
  double start = 0;  // scheduled (open loop) or actual (closed loop) send time
};

Call* issue(Recommender::Stub& stub, const RecommendRequest& request, grpc::CompletionQueue& cq, double start) {
  auto* call = new Call;
  call->start = start;
  call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  call->reader = stub.AsyncRecommend(&call->context, request, &cq);
  call->reader->Finish(&call->response, &call->status, call);
  return call;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  auto requests = read_requests(a.requests);

  // One connection per channel: SO_REUSEPORT spreads connections (not requests) over the server's processes.
  std::vector<std::unique_ptr<Recommender::Stub>> stubs;
  for (int c = 0; c < a.connections; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    stubs.push_back(Recommender::NewStub(grpc::CreateCustomChannel(a.target, grpc::InsecureChannelCredentials(), args)));
  }
  for (int i = 0; i < a.warmup * a.connections; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    RecommendResponse r;
    auto st = stubs[i % a.connections]->Recommend(&ctx, requests[i % requests.size()], &r);
    if (!st.ok()) {
      std::cerr << "ledrec-load: warm-up call failed: " << st.error_message() << "\n";
      return 1;
    }
  }
  if (a.wait) {
    std::cout << "warm" << std::endl;
    std::string line;
    std::getline(std::cin, line);
  }

  grpc::CompletionQueue cq;
  std::vector<double> latencies, lags;
  long errors = 0, sent = 0;
  double t0 = now_s(), elapsed = 0;

  if (a.mode == "closed") {
    double stop = t0 + a.seconds;
    for (int c = 0; c < a.clients; ++c, ++sent) issue(*stubs[sent % a.connections], requests[sent % requests.size()], cq, now_s());
    long in_flight = a.clients;
    void* tag;
    bool ok;
    while (in_flight > 0 && cq.Next(&tag, &ok)) {
      auto* call = static_cast<Call*>(tag);
      double t = now_s();
      if (call->status.ok()) latencies.push_back(t - call->start);
      else ++errors;
      delete call;
      --in_flight;
      if (t < stop) {
        issue(*stubs[sent % a.connections], requests[sent % requests.size()], cq, t);
        ++sent, ++in_flight;
      }
    }
    elapsed = now_s() - t0;
  } else {
    long n = static_cast<long>(a.rate * a.seconds);
    latencies.reserve(n);
    lags.reserve(n);
    std::atomic<long> done{0};
    // completions on their own thread, so that a slow answer never delays the next scheduled send
    std::thread receiver([&] {
      void* tag;
      bool ok;
      while (done.load() < n && cq.Next(&tag, &ok)) {
        auto* call = static_cast<Call*>(tag);
        double t = now_s();
        if (call->status.ok()) latencies.push_back(t - call->start);
        else ++errors;
        delete call;
        done.fetch_add(1);
      }
    });
    // Linux lets a sleeping thread wake up to 50 µs late by default (timer slack); 1 ns makes the schedule exact
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    double start = now_s() + 0.05;
    for (long i = 0; i < n; ++i, ++sent) {
      double scheduled = start + i / a.rate;
      sleep_until(scheduled);
      lags.push_back(now_s() - scheduled);
      issue(*stubs[i % a.connections], requests[i % requests.size()], cq, scheduled);
    }
    receiver.join();
    elapsed = now_s() - start;
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);

  write_f64(a.out + ".latency.f64", latencies);
  if (a.mode == "open") write_f64(a.out + ".lag.f64", lags);
  std::printf("{\"mode\": \"%s\", \"sent\": %ld, \"completed\": %zu, \"errors\": %ld, \"elapsed_s\": %.6f}\n",
              a.mode.c_str(), sent, latencies.size(), errors, elapsed);
  return 0;
}
