package resources

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/edgeless-go/edgeless/core"
)

// KafkaEgress is EDGELESS's kafka-egress provider: every event's payload is
// produced to the topic of the instance, with an empty key. Casts are
// produced asynchronously (a failure is logged and counted); a call waits
// for the broker's acknowledgement and replies an empty payload, or Err when
// the record could not be produced (EDGELESS replies empty either way). Each
// instance has its own client of the brokers of its configuration.
type KafkaEgress struct {
	log *slog.Logger
}

// NewKafkaEgress returns the kafka-egress provider.
func NewKafkaEgress(log *slog.Logger) *KafkaEgress {
	if log == nil {
		log = slog.Default()
	}
	return &KafkaEgress{log: log.With("provider", "kafka-egress")}
}

// Spec implements Provider.
func (p *KafkaEgress) Spec() Spec {
	return Spec{
		ClassType:   "kafka-egress",
		Version:     "1.1",
		Description: "Produces the payload of every cast or call as a record of the topic; a call replies once the brokers acknowledge it.",
		Outputs:     []string{},
		Configurations: map[string]string{
			"brokers": "comma-separated list of initial brokers to access the cluster (required)",
			"topic":   "topic to which messages are posted (required)",
		},
	}
}

// kafkaTimeout bounds the production of one record: the instance handles
// events one at a time, and brokers that are down must not stall it long.
const kafkaTimeout = 5 * time.Second

// Start implements Provider.
func (p *KafkaEgress) Start(cfg StartConfig) (Instance, error) {
	c := cfg.Configurations
	var brokers []string
	for b := range strings.SplitSeq(c["brokers"], ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, &ConfigError{Class: "kafka-egress", Key: "brokers", Msg: "missing"}
	}
	topic := c["topic"]
	if topic == "" {
		return nil, &ConfigError{Class: "kafka-egress", Key: "topic", Msg: "missing"}
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProduceRequestTimeout(kafkaTimeout),
		kgo.RecordDeliveryTimeout(kafkaTimeout),
		// As EDGELESS's producer: the brokers create the topic if they allow it.
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		return nil, &ConfigError{Class: "kafka-egress", Key: "brokers", Msg: err.Error()}
	}
	return &kafkaInstance{
		log:    p.log.With("instance", cfg.Self.Component.String(), "topic", topic),
		client: client,
		fail:   core.Throttle{Every: 10 * time.Second},
	}, nil
}

type kafkaInstance struct {
	log     *slog.Logger
	client  *kgo.Client
	dropped atomic.Uint64
	fail    core.Throttle
}

// record copies payload, which is only loaned, into a new record.
func record(payload []byte) *kgo.Record {
	return &kgo.Record{Key: []byte{}, Value: append([]byte(nil), payload...)}
}

func (i *kafkaInstance) Cast(src core.InstanceID, payload []byte) error {
	i.client.Produce(context.Background(), record(payload), func(_ *kgo.Record, err error) {
		if err != nil {
			i.drop(err)
		}
	})
	return nil
}

func (i *kafkaInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kafkaTimeout)
	defer cancel()
	if err := i.client.ProduceSync(ctx, record(payload)).FirstErr(); err != nil {
		i.drop(err)
		return core.CallErr, nil, nil
	}
	return core.CallReply, nil, nil
}

func (i *kafkaInstance) drop(err error) {
	total := i.dropped.Add(1)
	if ok, n := i.fail.Allow(); ok {
		i.log.Warn("kafka-egress cannot produce; record dropped", "err", fmt.Sprint(err), "failures", n, "dropped", total)
	}
}

// Close waits briefly for records still in flight, then closes the client.
func (i *kafkaInstance) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	i.client.Flush(ctx)
	i.client.Close()
	return nil
}
