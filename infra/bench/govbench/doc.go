// Package govbench holds make bench's governance benchmarks (issues 9 and
// 10, docs/performance.md "Metering and limits"):
//
//   - BenchmarkMetering: one chat-completion request through the whole
//     gateway handler on an endpoint with usage: openai versus the same
//     endpoint with usage: none, in-process, bbolt ledger. It reports
//     cpu-ns/op (user+system CPU of the process per request, from
//     getrusage), which is what the "metered ≤ 1.1 × unmetered" target is
//     about; ns/op also holds the ledger's fsync, which both pay.
//
//   - BenchmarkLimitedKey: the same call with a key that has rpm_limit,
//     max_parallel_requests and max_budget versus a key without limits, on
//     the DynamoDB store (moto server on loopback). Moto's absolute latency
//     says nothing about DynamoDB's, so only the ratio is reported.
//
//   - BenchmarkSSEStreams: 1000 concurrent streamed chat completions (20
//     events each) through the real gateway binary, metered (usage: openai,
//     include_usage injected and stripped) versus unmetered (usage: none);
//     it reports the gateway process's peak RSS (VmHWM) in MiB.
//
//     go test -run '^$' -bench . -benchtime 2000x ./infra/bench/govbench
package govbench
