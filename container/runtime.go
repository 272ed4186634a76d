package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"google.golang.org/grpc"

	"github.com/edgeless-go/edgeless/container/guestapi"
	"github.com/edgeless-go/edgeless/core"
)

// Labels put on every container the runtime creates.
const (
	LabelNode  = "edgeless.node"  // id of the node that owns the container
	labelPID   = "edgeless.pid"   // its process id …
	labelStart = "edgeless.start" // … started then (/proc/PID/stat) …
	labelHost  = "edgeless.host"  // … on this host (os.Hostname)
	labelKind  = "edgeless.kind"  // "instance", "spare" or the runtime of a pooled container
)

// ErrNoDaemon is returned by Start when no Docker daemon answers.
var ErrNoDaemon = errors.New("no Docker daemon answers")

// Config configures a Runtime.
type Config struct {
	// NodeID labels the runtime's containers.
	NodeID core.ID
	// DockerHost is the daemon's address (unix:///var/run/docker.sock,
	// tcp://…); "" uses DOCKER_HOST or the default socket.
	DockerHost string
	// Network is the Docker network containers join; "" is "bridge".
	Network string
	// HostURL is the GuestAPIHost address containers dial, as
	// http://ADDR:PORT; the server listens on ADDR:PORT. "" listens on the
	// network's gateway address, on a port of the system's choosing.
	HostURL string
	// StartTimeout bounds a container's creation up to its first reply.
	StartTimeout time.Duration
	// HandlerTimeout bounds one handler; a container past it is hung, and
	// the instance fails.
	HandlerTimeout time.Duration
	// IdleExpiration is how long a pooled container stays warm unused.
	IdleExpiration time.Duration
	// Prewarm is how many containers a language-runtime function starts
	// with.
	Prewarm int
	// Spares is how many started, unbooted containers of each image used
	// are kept ready for the next instance or pooled container.
	Spares int
	// Prestart names images whose spares are started with the runtime and
	// kept however long unused: the language runtimes' images, so that
	// even a function's first container is a spare.
	Prestart []string
	// MemoryMB limits a container's memory when the function sets no
	// memory_mb; 0 leaves it unlimited.
	MemoryMB int
	// CPUs limits a container's CPU when the function sets no cpus; 0
	// leaves it unlimited.
	CPUs float64
}

func (c *Config) setDefaults() {
	if c.Network == "" {
		c.Network = "bridge"
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 5 * time.Second
	}
	if c.IdleExpiration <= 0 {
		c.IdleExpiration = 5 * time.Minute
	}
}

// Runtime creates and removes the containers of one node and serves their
// host calls. Its methods are safe for concurrent use.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	docker *client.Client
	labels map[string]string

	srv      *grpc.Server
	lis      net.Listener
	endpoint string // GuestAPIHost URL handed to containers at Boot

	mu       sync.Mutex
	byIP     map[string]*box   // containers by address, for host calls
	pools    map[poolKey]*pool // warm containers of language-runtime functions
	boxes    map[*box]struct{} // every live container
	spares   spares
	prestart map[string]bool // images whose spares never expire
	count    counters
	closed   bool
	wg       sync.WaitGroup
	ctx      context.Context // ends at Close: stops the runtime's goroutines
	cancel   context.CancelFunc
}

// New creates a runtime's Docker client; it does not contact the daemon.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.DockerHost != "" {
		opts = append(opts, client.WithHost(cfg.DockerHost))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create the Docker client: %w", err)
	}
	host, _ := os.Hostname()
	_, started, _ := procStat(os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	return &Runtime{
		ctx:    ctx,
		cancel: cancel,
		cfg:    cfg,
		log:    log,
		docker: cli,
		labels: map[string]string{
			LabelNode:  cfg.NodeID.String(),
			labelPID:   strconv.Itoa(os.Getpid()),
			labelStart: started,
			labelHost:  host,
		},
		byIP:     map[string]*box{},
		pools:    map[poolKey]*pool{},
		boxes:    map[*box]struct{}{},
		spares:   spares{boxes: map[string][]*box{}, filling: map[string]bool{}},
		prestart: map[string]bool{},
	}, nil
}

// Start checks that the daemon answers (ErrNoDaemon otherwise), removes the
// orphans of dead nodes and starts the GuestAPIHost server. On failure the
// runtime must still be closed.
func (r *Runtime) Start(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := r.docker.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrNoDaemon, r.docker.DaemonHost(), err)
	}
	if err := r.removeOrphans(ctx); err != nil {
		return err
	}
	listen, endpoint, err := r.hostAddress(ctx)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("cannot listen for container host calls on %s: %w", listen, err)
	}
	r.lis = lis
	if endpoint == "" {
		endpoint = "http://" + lis.Addr().String()
	}
	r.endpoint = endpoint
	// Anything on the Docker network reaches this port: bound the
	// connections and their handshakes, as for every listener; calls are
	// then checked against the node's own containers.
	limited := core.HTTPLimits{MaxConns: 1024, MaxPerHost: 64}.Listener(lis)
	r.srv = grpc.NewServer(grpc.ConnectionTimeout(5*time.Second), grpc.MaxConcurrentStreams(256))
	guestapi.RegisterGuestAPIHostServer(r.srv, &hostServer{rt: r})
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := r.srv.Serve(limited); err != nil {
			r.log.Error("container host-call server stopped", "err", err)
		}
	}()
	go func() {
		defer r.wg.Done()
		r.evictLoop()
	}()
	for _, img := range r.cfg.Prestart {
		if _, err := r.docker.ImageInspect(ctx, img); err != nil {
			r.log.Info("no spare containers of a missing image (make images builds it)", "image", img)
			continue
		}
		r.prestart[img] = true
		r.refill(img)
	}
	r.log.Info("container runtime started", "docker", r.docker.DaemonHost(), "api", r.docker.ClientVersion(),
		"guest_api_host", endpoint, "network", r.cfg.Network)
	return nil
}

// Endpoint returns the GuestAPIHost URL containers are told at Boot.
func (r *Runtime) Endpoint() string { return r.endpoint }

// hostAddress returns where the GuestAPIHost server listens and, when
// configured, the URL containers dial ("" = the listener's address).
func (r *Runtime) hostAddress(ctx context.Context) (listen, endpoint string, err error) {
	port := "0"
	if r.cfg.HostURL != "" {
		u, err := url.Parse(r.cfg.HostURL)
		if err != nil || u.Host == "" || u.Port() == "" {
			return "", "", fmt.Errorf("guest_api_host_url %q: want http://ADDR:PORT", r.cfg.HostURL)
		}
		ip := net.ParseIP(u.Hostname())
		if ip == nil || !ip.IsLoopback() {
			return u.Host, r.cfg.HostURL, nil
		}
		// A container's loopback is its own: EDGELESS's template names
		// 127.0.0.1, which no container reaches.
		port = u.Port()
		r.log.Info("guest_api_host_url is a loopback address, which containers cannot reach; using the Docker network's gateway", "url", r.cfg.HostURL)
	}
	n, err := r.docker.NetworkInspect(ctx, r.cfg.Network, network.InspectOptions{})
	if err != nil {
		return "", "", fmt.Errorf("cannot inspect Docker network %q: %w", r.cfg.Network, err)
	}
	// Only containers (and this host) reach the gateway address.
	if gw := gateway(n); gw != "" {
		return net.JoinHostPort(gw, port), "", nil
	}
	return "", "", fmt.Errorf("docker network %q has no IPv4 gateway: set guest_api_host_url", r.cfg.Network)
}

// gateway returns a network's IPv4 gateway: the one IPAM names or, as the
// default bridge names none, the address of its bridge interface.
func gateway(n network.Inspect) string {
	for _, c := range n.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return ip.String()
		}
	}
	ifi, err := net.InterfaceByName(n.Options["com.docker.network.bridge.name"])
	if err != nil {
		return ""
	}
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// removeOrphans removes the containers of nodes that are gone: those of
// this node's id (a node restarted with a fixed node_id), and those of a
// process of this host that no longer runs.
func (r *Runtime) removeOrphans(ctx context.Context) error {
	list, err := r.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelNode))})
	if err != nil {
		return fmt.Errorf("cannot list containers: %w", err)
	}
	for _, c := range list {
		if !r.orphan(c.Labels) {
			continue
		}
		if err := r.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			r.log.Warn("cannot remove an orphan container", "container", c.ID[:12], "err", err)
			continue
		}
		r.log.Info("removed an orphan container", "container", c.ID[:12], "image", c.Image, "of_node", c.Labels[LabelNode])
	}
	return nil
}

func (r *Runtime) orphan(l map[string]string) bool {
	if l[LabelNode] == r.labels[LabelNode] {
		return true
	}
	if l[labelHost] != r.labels[labelHost] {
		return false // another host's node; it cleans up after itself
	}
	pid, err := strconv.Atoi(l[labelPID])
	if err != nil || pid <= 0 {
		return false
	}
	state, started, err := procStat(pid)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	// A zombie is dead; another start time is another process that got
	// the pid since.
	return err == nil && (state == "Z" || state == "X" || (l[labelStart] != "" && started != l[labelStart]))
}

// procStat returns a process's state and start time (clock ticks since
// boot) from /proc/PID/stat.
func procStat(pid int) (state, started string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", err
	}
	// The command name, in parentheses, may hold spaces: fields start after it.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return "", "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return f[0], f[19], nil
}

// Close removes every container the runtime created and stops the host-call
// server. Instances should have been stopped first. It is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cancel()
	var boxes []*box
	for b := range r.boxes {
		boxes = append(boxes, b)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range boxes {
		wg.Add(1)
		go func() { defer wg.Done(); b.remove() }()
	}
	wg.Wait()
	if r.srv != nil {
		r.srv.Stop()
	}
	r.wg.Wait()
	return r.docker.Close()
}

// track records a live container; it fails once the runtime is closed.
func (r *Runtime) track(b *box) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("container runtime is closed")
	}
	r.boxes[b] = struct{}{}
	return nil
}

func (r *Runtime) untrack(b *box) {
	r.mu.Lock()
	delete(r.boxes, b)
	if b.ip != "" && r.byIP[b.ip] == b {
		delete(r.byIP, b.ip)
	}
	r.mu.Unlock()
}

func (r *Runtime) setIP(b *box) {
	r.mu.Lock()
	r.byIP[b.ip] = b
	r.mu.Unlock()
}

func (r *Runtime) boxAt(ip string) *box {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byIP[ip]
}

// Image splits EDGELESS's container code, "container:IMAGE:TAG", into the
// image reference; a bare IMAGE[:TAG] is taken as it is.
func Image(code string) (string, error) {
	ref := strings.TrimSpace(strings.TrimPrefix(code, "container:"))
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return "", fmt.Errorf("bad container image reference %q: want container:IMAGE:TAG", code)
	}
	return ref, nil
}
