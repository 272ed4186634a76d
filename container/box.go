package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/edgeless-go/edgeless/container/guestapi"
	"github.com/edgeless-go/edgeless/core"
)

// box is one container serving GuestAPIFunction.
type box struct {
	rt       *Runtime
	id       string // Docker's container id
	image    string
	memoryMB int     // its limits, as set
	cpus     float64 // …
	ip       string
	conn     *grpc.ClientConn
	fn       guestapi.GuestAPIFunctionClient

	owner    atomic.Pointer[Instance] // whose handler it serves: host calls go there
	exited   chan struct{}            // closed once the container no longer runs
	idleFrom time.Time                // when it went back to its pool; pool's lock
	once     sync.Once
	removed  atomic.Bool
}

// boxSpec is what a container is created from.
type boxSpec struct {
	image    string
	kind     string // label: "instance", or the language runtime
	memoryMB int
	cpus     float64
}

// newBox creates and starts a container and connects to its
// GuestAPIFunction port; it does not wait for the server to answer (boot
// does). On error nothing is left behind.
func (r *Runtime) newBox(ctx context.Context, s boxSpec) (_ *box, err error) {
	labels := make(map[string]string, len(r.labels)+1)
	for k, v := range r.labels {
		labels[k] = v
	}
	labels[labelKind] = s.kind
	mem, cpus := r.limits(s.memoryMB, s.cpus)
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(r.cfg.Network)}
	if mem > 0 {
		// Swap as large as the limit would let a function past it slowly.
		hc.Resources.Memory = int64(mem) << 20
		hc.Resources.MemorySwap = int64(mem) << 20
	}
	if cpus > 0 {
		hc.Resources.NanoCPUs = int64(cpus * 1e9)
	}
	created, err := r.docker.ContainerCreate(ctx, &container.Config{Image: s.image, Labels: labels}, hc, nil, nil, "")
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s is not on this node's Docker host (images are never pulled: build or load it there): %w", s.image, ErrNoImage)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot create a container of image %s: %w", s.image, err)
	}
	r.count.created.Add(1)
	b := &box{rt: r, id: created.ID, image: s.image, memoryMB: mem, cpus: cpus, exited: make(chan struct{})}
	if err := r.track(b); err != nil {
		r.forceRemove(created.ID)
		return nil, err
	}
	defer func() {
		if err != nil {
			b.remove()
		}
	}()
	if err := r.docker.ContainerStart(ctx, b.id, container.StartOptions{}); err != nil {
		return nil, fmt.Errorf("cannot start container %s of image %s: %w", b.short(), s.image, err)
	}
	info, err := r.docker.ContainerInspect(ctx, b.id)
	if err != nil {
		return nil, fmt.Errorf("cannot inspect container %s: %w", b.short(), err)
	}
	port, err := guestPort(info.Config.ExposedPorts)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", s.image, err)
	}
	if ep := info.NetworkSettings.Networks[r.cfg.Network]; ep != nil {
		b.ip = ep.IPAddress
	}
	if b.ip == "" {
		return nil, fmt.Errorf("container %s has no address on network %s", b.short(), r.cfg.Network)
	}
	r.setIP(b)
	b.conn, err = grpc.NewClient(net.JoinHostPort(b.ip, port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The server comes up within a few hundred ms: retry often, or
		// gRPC's default backoff (1 s and up) would dominate a cold start.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1.5, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to container %s: %w", b.short(), err)
	}
	b.fn = guestapi.NewGuestAPIFunctionClient(b.conn)
	r.wg.Add(1)
	go b.watch()
	return b, nil
}

// limits returns the limits a container of a function limited to memoryMB
// and cpus gets: the runtime's defaults where those are 0.
func (r *Runtime) limits(memoryMB int, cpus float64) (int, float64) {
	if memoryMB == 0 {
		memoryMB = r.cfg.MemoryMB
	}
	if cpus == 0 {
		cpus = r.cfg.CPUs
	}
	return memoryMB, cpus
}

// guestPort returns the TCP port the image exposes for GuestAPIFunction.
func guestPort(ports nat.PortSet) (string, error) {
	var tcp []int
	for p := range ports {
		if p.Proto() == "tcp" {
			tcp = append(tcp, p.Int())
		}
	}
	if len(tcp) == 0 {
		return "", errors.New("it exposes no TCP port for GuestAPIFunction (EXPOSE one)")
	}
	slices.Sort(tcp)
	return fmt.Sprint(tcp[0]), nil
}

// watch closes exited when the container stops running, whoever stopped it.
func (b *box) watch() {
	defer b.rt.wg.Done()
	defer close(b.exited)
	resp, errs := b.rt.docker.ContainerWait(b.rt.ctx, b.id, container.WaitConditionNotRunning)
	select {
	case <-resp:
	case <-errs:
	}
}

// boot waits for the container's server and calls Boot.
func (b *box) boot(ctx context.Context, self core.InstanceID) error {
	ctx, cancel := context.WithTimeout(ctx, b.rt.cfg.StartTimeout)
	defer cancel()
	_, err := b.fn.Boot(ctx, &guestapi.BootData{GuestApiHostEndpoint: b.rt.endpoint, InstanceId: instanceID(self)}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("container %s of image %s did not boot: %w", b.short(), b.image, b.why(err))
	}
	return nil
}

// why explains a failed request: the container's death if it died.
func (b *box) why(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		select {
		case <-b.exited:
		default:
			return err // hung, not dead: the caller says so
		}
	}
	// The connection drops a moment before Docker sees the process gone.
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-b.exited:
	case <-t.C:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, ierr := b.rt.docker.ContainerInspect(ctx, b.id)
	if ierr != nil || info.State == nil || info.State.Running {
		return err
	}
	if info.State.OOMKilled {
		return fmt.Errorf("container killed for exceeding its memory limit of %d MiB: %w", b.memoryMB, ErrMemoryLimit)
	}
	return fmt.Errorf("container exited with code %d: %w", info.State.ExitCode, ErrExited)
}

// Errors a container's failure wraps.
var (
	ErrExited      = errors.New("container exited")
	ErrMemoryLimit = errors.New("memory limit exceeded")
	ErrHung        = errors.New("container hung")
	// ErrNoImage is returned for an image missing on the Docker host.
	ErrNoImage = errors.New("no such image")
)

// remove closes the connection and removes the container; it is idempotent.
func (b *box) remove() {
	b.once.Do(func() {
		b.removed.Store(true)
		if b.conn != nil {
			b.conn.Close()
		}
		b.rt.forceRemove(b.id)
		b.rt.untrack(b)
	})
}

func (r *Runtime) forceRemove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		r.log.Warn("cannot remove container", "container", id[:12], "err", err)
	}
}

func (b *box) short() string { return b.id[:12] }

func instanceID(id core.InstanceID) *guestapi.InstanceId {
	return &guestapi.InstanceId{NodeId: id.Node.String(), FunctionId: id.Component.String()}
}

// codeArchive returns a tar archive that puts code under code/: the files
// of code when it is a tar archive itself, else code as code/NAME. Links,
// devices and paths leaving code/ are dropped.
func codeArchive(code []byte, name string) ([]byte, error) {
	var out bytes.Buffer
	w := tar.NewWriter(&out)
	dir := func(p string) error {
		return w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755})
	}
	if err := dir("code"); err != nil {
		return nil, err
	}
	if !isTar(code) {
		if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "code/" + name, Mode: 0o644, Size: int64(len(code))}); err != nil {
			return nil, err
		}
		if _, err := w.Write(code); err != nil {
			return nil, err
		}
		return finish(w, &out)
	}
	r := tar.NewReader(bytes.NewReader(code))
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bad code archive: %w", err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = dir("code/" + strings.TrimSuffix(name, "/"))
		case tar.TypeReg:
			err = w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "code/" + name, Mode: 0o644, Size: h.Size})
			if err == nil {
				_, err = io.Copy(w, r)
			}
		default:
			continue // links and devices have no place in function code
		}
		if err != nil {
			return nil, err
		}
	}
	return finish(w, &out)
}

// finish writes the archive's trailer and returns the archive.
func finish(w *tar.Writer, out *bytes.Buffer) ([]byte, error) {
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// isTar reports whether b starts with a POSIX tar header.
func isTar(b []byte) bool {
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}
