// Package guestapi is the generated code of EDGELESS's container function
// ABI: the GuestAPIFunction and GuestAPIHost gRPC services and their
// messages. Regenerate with `go generate ./container/guestapi` (protoc,
// protoc-gen-go and protoc-gen-go-grpc on PATH).
package guestapi

//go:generate protoc -I . -I /usr/include --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative messages.proto services.proto
