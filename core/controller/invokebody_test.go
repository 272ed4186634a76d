package controller

import (
	"encoding/json"
	"reflect"
	"testing"
)

var invocationBodies = []string{
	`{"params":{}}`, ` { } `, `{}`, `{"params":null,"async":null}`, `{"async":true}`,
	`{"params":{"a":[1,{"b":"}]\"{"}],"c":"\\"},"async":true}`, `{"params":{"x":1},"params":{"y":2}}`,
	`{"async":true,"async":null}`, "{\n\t\"params\" : { \"n\" : 12345678901234567890 } ,\r\"async\":false}",
	`{"Params":{}}`, `{"params":{},"qos_class":1}`, `{"par\u0061ms":{}}`, `{"params":[1]}`, `{"params":"x"}`,
	`{"async":1}`, `{"async":"true"}`, `[]`, `null`, `{"params":{}`, `{"params":{}}x`, `{"a":{"params":{}}}`,
	`{"params":{"k":"\ud800"}}`, "{\"params\":{\"k\":\"\xff\"}}",
}

// TestInvocationBody: the usual invocation bodies are read without
// encoding/json, every other one with it, and both ways give what
// json.Unmarshal gives.
func TestInvocationBody(t *testing.T) {
	quick := map[string]bool{
		`{"params":{}}`: true, ` { } `: true, `{}`: true, `{"params":null,"async":null}`: true, `{"async":true}`: true,
		`{"params":{"a":[1,{"b":"}]\"{"}],"c":"\\"},"async":true}`: true, `{"params":{"x":1},"params":{"y":2}}`: true,
		`{"async":true,"async":null}`: true, "{\n\t\"params\" : { \"n\" : 12345678901234567890 } ,\r\"async\":false}": true,
		`{"params":{"k":"\ud800"}}`: true, "{\"params\":{\"k\":\"\xff\"}}": true,
	}
	for _, body := range invocationBodies {
		var r apiInvocation
		if got := r.quick([]byte(body)); got != quick[body] {
			t.Errorf("quick(%q) = %v, want %v", body, got, quick[body])
		}
		sameAsEncodingJSON(t, []byte(body))
	}
}

// FuzzInvocationBody: whatever the body, decodeBody reads it as
// json.Unmarshal does.
func FuzzInvocationBody(f *testing.F) {
	for _, body := range invocationBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(sameAsEncodingJSON)
}

func sameAsEncodingJSON(t *testing.T, data []byte) {
	var got, want apiInvocation
	gotErr := got.decodeBody(append([]byte(nil), data...))
	wantErr := json.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q: decodeBody = %+v, %v; json.Unmarshal = %+v, %v", data, got, gotErr, want, wantErr)
	}
}

// BenchmarkInvocationBody: an invocation's body read by decodeBody and by
// json.Unmarshal.
func BenchmarkInvocationBody(b *testing.B) {
	for name, body := range map[string][]byte{"empty": []byte(`{"params":{}}`), "params": []byte(`{"params":{"a":1,"b":"xyz","c":[1,2,3]},"async":false}`)} {
		b.Run(name+"/decodeBody", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r apiInvocation
				if err := r.decodeBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r apiInvocation
				if err := json.Unmarshal(body, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
