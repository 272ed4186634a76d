package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// csvOut writes rows in EDGELESS's benchmark format:
// <additional fields>,seed,timestamp,metric,target,value. A header is
// written unless the file is appended to and already has content.
type csvOut struct {
	f      *os.File
	w      *bufio.Writer
	prefix string
}

func openCSV(path string, appendTo bool, fields, header string, seed uint64) (*csvOut, error) {
	nf, nh := strings.Count(fields, ",")+1, strings.Count(header, ",")+1
	if fields == "" {
		nf = 0
	}
	if header == "" {
		nh = 0
	}
	if nf != nh {
		return nil, fmt.Errorf("--additional-fields has %d values but --additional-header has %d", nf, nh)
	}
	flags := os.O_WRONLY | os.O_CREATE
	if appendTo {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open the output: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open the output: %w", err)
	}
	c := &csvOut{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	if fields != "" {
		c.prefix = fields + ","
	}
	c.prefix += strconv.FormatUint(seed, 10) + ","
	if fi.Size() == 0 {
		if header != "" {
			c.w.WriteString(header + ",")
		}
		c.w.WriteString("seed,timestamp,metric,target,value\n")
	}
	return c, nil
}

// row writes one row; a value holding a comma, quote or newline is quoted.
func (c *csvOut) row(ts time.Time, metric, target, value string) {
	c.w.WriteString(c.prefix)
	c.w.WriteString(strconv.FormatFloat(float64(ts.UnixMicro())/1e6, 'f', 6, 64))
	c.w.WriteByte(',')
	c.w.WriteString(metric)
	c.w.WriteByte(',')
	c.w.WriteString(csvQuote(target))
	c.w.WriteByte(',')
	c.w.WriteString(csvQuote(value))
	c.w.WriteByte('\n')
}

func csvQuote(s string) string {
	if !strings.ContainsAny(s, ",\"\n\r") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (c *csvOut) close() error {
	return errors.Join(c.w.Flush(), c.f.Close())
}
