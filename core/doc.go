// Package core holds the vocabulary every part of edgeless shares: identifiers,
// event kinds and the event record that moves between function instances.
//
// It depends on the standard library only, so that every other package can use
// it without pulling in a runtime, a transport or a parser.
package core
