package spec

// NotOffered returns why edgeless offers no provider of EDGELESS's resource
// class, or "" when the class is one it offers or does not know. A node may
// still serve a class of that name through a serverless provider, so this
// explains a refusal rather than causing one.
func NotOffered(class string) string {
	switch class {
	case "dda":
		return "EDGELESS's dda class (Data Distribution Agent sidecar) is not offered by edgeless"
	case "ollama":
		return "EDGELESS's ollama class (chat with an Ollama server) is not offered by edgeless"
	case "scd30-sensor", "epaper-display":
		return "EDGELESS's " + class + " class runs on embedded (ESP32) nodes, which edgeless does not support"
	case "portal":
		return "EDGELESS's portal class belongs to its inter-domain balancer, which edgeless does not have"
	}
	return ""
}
