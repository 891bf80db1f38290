// Command gocp is the go-control-plane peer of meshplane's fan-out benchmark.
//
// It serves, over ADS (SotW), snapshots that the Python bench hands it, using
// go-control-plane's own SnapshotCache, and reports when every Envoy has ACKed
// the latest push, so meshplane and go-control-plane can be timed against the
// same Envoys serving the same bytes.
//
// Control port (HTTP, loopback):
//
//	POST /push  body {"nodes": {nodeID: {typeURL: {"version": v, "resources": [base64 body]}}}}
//	            decodes every resource first, then starts the clock and calls
//	            SetSnapshot for each node; answers {"push": n}.
//	GET  /wait?push=n  blocks until every node of push n ACKed every type at its
//	            version (or NACKed, or 120 s passed); answers the timings.
//
// Stdout gets one line, "xds=PORT http=PORT", once both ports listen.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	// The resource types the bench sends, registered for anypb.UnmarshalNew.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

const waitLimit = 120 * time.Second

type typed struct {
	Version   string   `json:"version"`
	Resources []string `json:"resources"`
}

type pushBody struct {
	Nodes map[string]map[string]typed `json:"nodes"`
}

// result is what /wait answers: seconds from the first SetSnapshot of the push.
type result struct {
	AllAcked float64            `json:"all_acked_s"`
	PerNode  map[string]float64 `json:"per_node_s"`
	Nacks    int                `json:"nacks"`
	TimedOut bool               `json:"timed_out"`
}

// tracker holds the latest push's targets and which nodes have ACKed them.
type tracker struct {
	mu      sync.Mutex
	push    int
	started time.Time
	// target: node → type URL → version still to be ACKed (removed once ACKed).
	target  map[string]map[string]string
	ackedAt map[string]float64
	nacks   int
	done    chan struct{}
	// acked: node → type URL → the last version the node ACKed (any push).
	acked   map[string]map[string]string
	streams map[int64]string
}

func newTracker() *tracker {
	done := make(chan struct{})
	close(done)
	return &tracker{
		target:  map[string]map[string]string{},
		ackedAt: map[string]float64{},
		done:    done,
		acked:   map[string]map[string]string{},
		streams: map[int64]string{},
	}
}

// expect makes targets the new push; nodes already running them count at once.
func (t *tracker) expect(targets map[string]map[string]string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.push++
	t.started = time.Now()
	t.target = targets
	t.ackedAt = map[string]float64{}
	t.nacks = 0
	t.done = make(chan struct{})
	for node := range targets {
		t.check(node)
	}
	return t.push
}

// check drops the types node has ACKed from its target; call with mu held.
func (t *tracker) check(node string) {
	want, ok := t.target[node]
	if !ok {
		return
	}
	for typeURL, version := range want {
		if t.acked[node][typeURL] == version {
			delete(want, typeURL)
		}
	}
	if len(want) > 0 {
		return
	}
	delete(t.target, node)
	t.ackedAt[node] = time.Since(t.started).Seconds()
	if len(t.target) == 0 {
		close(t.done)
	}
}

// onRequest is the OnStreamRequest callback: an ACK carries the applied version.
func (t *tracker) onRequest(stream int64, req *discovery.DiscoveryRequest) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	node := req.GetNode().GetId()
	if node == "" {
		node = t.streams[stream]
	} else {
		t.streams[stream] = node
	}
	if req.GetErrorDetail() != nil {
		t.nacks++
		return nil
	}
	if req.GetVersionInfo() == "" {
		return nil
	}
	if t.acked[node] == nil {
		t.acked[node] = map[string]string{}
	}
	t.acked[node][req.GetTypeUrl()] = req.GetVersionInfo()
	t.check(node)
	return nil
}

func (t *tracker) onClosed(stream int64, _ *core.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, stream)
}

// wait blocks until push is fully ACKed (or superseded, or the limit passes).
func (t *tracker) wait(push int) result {
	t.mu.Lock()
	done := t.done
	current := t.push
	t.mu.Unlock()
	timedOut := false
	if push == current {
		select {
		case <-done:
		case <-time.After(waitLimit):
			timedOut = true
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := result{PerNode: map[string]float64{}, Nacks: t.nacks, TimedOut: timedOut}
	for node, seconds := range t.ackedAt {
		out.PerNode[node] = seconds
		if seconds > out.AllAcked {
			out.AllAcked = seconds
		}
	}
	return out
}

// decode turns one node's body into a go-control-plane snapshot and its target versions.
func decode(byType map[string]typed) (*cache.Snapshot, map[string]string, error) {
	snapshot := &cache.Snapshot{}
	versions := map[string]string{}
	for typeURL, group := range byType {
		index := cache.GetResponseType(typeURL)
		if index == types.UnknownType {
			return nil, nil, fmt.Errorf("unknown type %q", typeURL)
		}
		items := make([]types.Resource, 0, len(group.Resources))
		for _, encoded := range group.Resources {
			body, err := base64.StdEncoding.DecodeString(encoded)
			if err != nil {
				return nil, nil, err
			}
			msg, err := anypb.UnmarshalNew(&anypb.Any{TypeUrl: typeURL, Value: body}, proto.UnmarshalOptions{})
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", typeURL, err)
			}
			items = append(items, msg)
		}
		snapshot.Resources[index] = cache.NewResources(group.Version, items)
		if len(items) > 0 {
			versions[typeURL] = group.Version
		}
	}
	return snapshot, versions, nil
}

func main() {
	ctx := context.Background()
	snapshots := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	acks := newTracker()
	callbacks := server.CallbackFuncs{StreamRequestFunc: acks.onRequest, StreamClosedFunc: acks.onClosed}
	xds := server.NewServer(ctx, snapshots, callbacks)

	grpcServer := grpc.NewServer(grpc.MaxConcurrentStreams(1 << 20))
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, xds)
	xdsListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(grpcServer.Serve(xdsListener)) }()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		var body pushBody
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		built := map[string]*cache.Snapshot{}
		targets := map[string]map[string]string{}
		for node, byType := range body.Nodes {
			snapshot, versions, err := decode(byType)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			built[node], targets[node] = snapshot, versions
		}
		push := acks.expect(targets)
		for node, snapshot := range built {
			if err := snapshots.SetSnapshot(ctx, node, snapshot); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		writeJSON(w, map[string]int{"push": push})
	})
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		push, err := strconv.Atoi(r.URL.Query().Get("push"))
		if err != nil {
			http.Error(w, "push=N required", http.StatusBadRequest)
			return
		}
		writeJSON(w, acks.wait(push))
	})
	httpListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("xds=%d http=%d\n", port(xdsListener), port(httpListener))
	os.Stdout.Sync()
	log.Fatal(http.Serve(httpListener, mux))
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

func writeJSON(w http.ResponseWriter, value any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(value)
}
