package core

import (
	"net/url"
	"strings"
)

// Redact returns s with the password of a URL in it (scheme://user:pass@host…)
// replaced by "xxxxx", for logs, metrics labels and API replies. Anything that
// is not such a URL is returned as it is.
func Redact(s string) string {
	i := strings.Index(s, "://")
	if i < 0 || !strings.Contains(s[i:], "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		// Unparsable but shaped like credentials: hide everything up to the host.
		at := strings.LastIndex(s, "@")
		return s[:i+3] + "xxxxx" + s[at:]
	}
	if _, has := u.User.Password(); has {
		return u.Redacted()
	}
	return s
}
