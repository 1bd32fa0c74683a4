// Package authbench holds make bench's authentication-cost benchmarks:
// auth.Authenticator with the key served from its in-process cache versus a
// store read on every request, for the bbolt store and for the DynamoDB
// store against moto server on loopback (shared/awstest). Moto is a Python
// emulator: its absolute latency says nothing about DynamoDB's, so only the
// ratio within the store is reported.
//
//	go test -run '^$' -bench . -benchmem ./infra/bench/authbench
package authbench
