package resources

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// redisGet reads a key of the package's redis-server directly.
func redisGet(t *testing.T, key string) string {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DisableIdentity: true})
	defer rc.Close()
	v, err := rc.Get(context.Background(), key).Result()
	if err != nil && err != redis.Nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

func TestRedis(t *testing.T) {
	wf := core.NewID()
	src := core.InstanceID{Node: core.NewID(), Component: core.NewID()}
	start := func(conf map[string]string) *redisInstance {
		t.Helper()
		conf["url"] = redisSrv.URL()
		i, err := NewRedis(nil).Start(StartConfig{Workflow: wf, Configurations: conf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { i.Close() })
		return i.(*redisInstance)
	}
	plain := start(map[string]string{"key": "k-plain"})
	prefixed := start(map[string]string{"key": "k", "add-workflow-id": ""})

	plain.Cast(src, []byte("v1"))
	prefixed.Cast(src, []byte("v2"))
	plain.Cast(src, []byte("dyn:v3:x"))
	if got := redisGet(t, "k-plain"); got != "v1" {
		t.Fatalf("k-plain = %q", got)
	}
	if got := redisGet(t, wf.String()+":k"); got != "v2" {
		t.Fatalf("prefixed key = %q", got)
	}
	if got := redisGet(t, "dyn"); got != "v3:x" {
		t.Fatalf("dynamic key = %q", got)
	}
	f := func(i *redisInstance, key string, wantRet core.CallRet, want string) {
		t.Helper()
		ret, v, err := i.Call(src, []byte(key))
		if err != nil || ret != wantRet || string(v) != want {
			t.Fatalf("GET %s = %v %q %v, want %v %q", key, ret, v, err, wantRet, want)
		}
	}
	f(plain, "k-plain", core.CallReply, "v1")
	f(prefixed, "k", core.CallReply, "v2")
	f(plain, "missing", core.CallErr, "")

	// Redis goes away: casts are dropped and counted, calls fail; then it
	// comes back on the same port and both work again.
	redisSrv.Kill()
	plain.Cast(src, []byte("lost"))
	f(plain, "k-plain", core.CallErr, "")
	if plain.Dropped() != 1 {
		t.Fatalf("dropped = %d, want 1", plain.Dropped())
	}
	if err := redisSrv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The client probes Redis once a second; casts until then are dropped.
	testutil.EventuallyDetail(t, 5*time.Second, "recovery after Redis came back", func() bool {
		plain.Cast(src, []byte("back"))
		return redisGet(t, "k-plain") == "back"
	}, func() string { return fmt.Sprintf("dropped %d", plain.Dropped()) })
	f(plain, "k-plain", core.CallReply, "back")
	if _, err := NewRedis(nil).Start(StartConfig{Configurations: map[string]string{}}); err == nil || !strings.Contains(err.Error(), `"url": missing`) {
		t.Fatalf("missing url: %v", err)
	}
}

// resolver is a Host that knows one logical id.
type resolver struct {
	fakeHost
	phys    core.InstanceID
	logical core.ID
}

func (r *resolver) LogicalID(src core.InstanceID) (core.ID, bool) {
	return r.logical, src == r.phys
}

func TestMetricsCollector(t *testing.T) {
	p, err := NewMetricsCollector(redisSrv.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	src := core.InstanceID{Node: core.NewID(), Component: core.NewID()}
	h := &resolver{phys: src, logical: core.NewID()}
	wfName := "wf-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	inst, err := p.Start(StartConfig{Configurations: map[string]string{"wf_name": wfName, "alpha": "0.5"}, Host: h})
	if err != nil {
		t.Fatal(err)
	}
	cast := func(s string) {
		t.Helper()
		if err := inst.Cast(src, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	for n := range 2 {
		id := strconv.Itoa(n)
		cast("workflow:begin:" + id)
		cast("function:begin:" + id)
		time.Sleep(20 * time.Millisecond) // the duration measured
		cast("function:end:" + id)
		cast("workflow:end:" + id)
	}
	cast("function:end:99") // never began: ignored
	cast("garbage")

	rc := redis.NewClient(&redis.Options{Addr: redisSrv.Addr(), DisableIdentity: true})
	defer rc.Close()
	ctx := context.Background()
	check := func(samplesKey, avgKey string) {
		t.Helper()
		samples, err := rc.LRange(ctx, samplesKey, 0, -1).Result()
		if err != nil || len(samples) != 2 {
			t.Fatalf("%s = %q, %v; want 2 samples", samplesKey, samples, err)
		}
		var sum float64
		var vals []float64
		for _, s := range samples {
			ms, ts, ok := strings.Cut(s, ",")
			v, err1 := strconv.Atoi(ms)
			sec, frac, _ := strings.Cut(ts, ".")
			unix, err2 := strconv.ParseInt(sec, 10, 64)
			if !ok || err1 != nil || err2 != nil || len(frac) != 3 || v < 20 || v > 5000 || time.Since(time.Unix(unix, 0)) > time.Minute {
				t.Fatalf("sample %q is not <ms>,<unix>.<mmm> of a recent 20 ms", s)
			}
			vals = append(vals, float64(v))
			sum += float64(v)
		}
		avg, err := rc.Get(ctx, avgKey).Float64()
		if want := 0.5*vals[1] + 0.5*vals[0]; err != nil || avg != want {
			t.Fatalf("%s = %v, %v; want %v", avgKey, avg, err, want)
		}
	}
	check("function:"+src.Component.String()+":samples", "function:"+h.logical.String()+":average")
	check("workflow:"+wfName+":samples", "workflow:"+wfName+":average")

	cast("reset:0")
	if n, err := rc.Exists(ctx, "workflow:"+wfName+":samples", "function:"+h.logical.String()+":average").Result(); err != nil || n != 0 {
		t.Fatalf("after reset %d keys remain (%v)", n, err)
	}
}
