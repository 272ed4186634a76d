package resources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/edgeless-go/edgeless/core"
)

// startKafka starts a Kafka-protocol cluster in this process (franz-go's
// kfake) and returns its brokers' addresses.
func startKafka(t *testing.T, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// consume reads n records of topic from the start, within a deadline.
func consume(t *testing.T, brokers, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s: %q", len(got), n, topic, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Key) != 0 {
				t.Errorf("record key %q, want empty", r.Key)
			}
			got = append(got, string(r.Value))
		})
	}
	return got
}

func TestKafkaEgress(t *testing.T) {
	brokers := startKafka(t, "readings")
	p := NewKafkaEgress(nil)
	i, err := p.Start(StartConfig{Configurations: map[string]string{"brokers": brokers, "topic": "readings"}})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("one")
	i.Cast(core.InstanceID{}, payload)
	copy(payload, "XXX") // the payload is only loaned to Cast
	i.Cast(core.InstanceID{}, []byte("two"))
	if ret, reply, err := i.Call(core.InstanceID{}, []byte("three")); ret != core.CallReply || len(reply) != 0 || err != nil {
		t.Fatalf("call = %v %q %v, want an empty reply", ret, reply, err)
	}
	if err := i.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(consume(t, brokers, "readings", 3), ","); got != "one,two,three" {
		t.Fatalf("records %q, want one,two,three", got)
	}

	f := func(conf map[string]string, want string) {
		t.Helper()
		if _, err := p.Start(StartConfig{Configurations: conf}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err = %v, want %q", conf, err, want)
		}
	}
	f(map[string]string{"topic": "t"}, `resource kafka-egress: configuration "brokers": missing`)
	f(map[string]string{"brokers": brokers}, `resource kafka-egress: configuration "topic": missing`)
}
