package edgeless

import "strings"

// InitArgs parses an init-payload of the form "k1=v1,k2=v2" into a map.
// Items are separated by ',', a key ends at the first '=' and its value runs
// to the next ',' (values may contain '=' but not ','); spaces around keys
// and values are dropped; items without '=' are ignored; a repeated key
// keeps its last value. The strings are copies, so the map outlives payload.
func InitArgs(payload []byte) map[string]string {
	args := make(map[string]string)
	for item := range strings.SplitSeq(string(payload), ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		args[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return args
}

// InitArg returns the value of key in an init-payload, parsed as InitArgs
// does, and whether the key is present.
func InitArg(payload []byte, key string) (string, bool) {
	v, ok := InitArgs(payload)[key]
	return v, ok
}
