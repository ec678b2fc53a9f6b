package report

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"imcast/chatapi"
	"imcast/job"
)

// Metrics are what a run shows Prometheus: its deliveries by kind and
// state, its calls, refusals by status and retries, and each kind's pace,
// quota and margin in force, read from the run's progress when scraped.
type Metrics struct {
	Progress *job.Progress
	Quotas   chatapi.Quotas

	mu     sync.Mutex
	toSend map[chatapi.Kind]int64 // the kinds of the run, and their deliveries to send
}

// SetToSend gives the run's kinds, and their deliveries to send, once the
// plan knows them; until then no kind is shown.
func (m *Metrics) SetToSend(toSend map[chatapi.Kind]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.toSend = toSend
}

var (
	descDeliveries = prometheus.NewDesc("imcast_deliveries_total", "Deliveries the run recorded, by kind and state (sent, failed, uncertain).", []string{"kind", "state"}, nil)
	descToSend     = prometheus.NewDesc("imcast_deliveries_to_send", "Deliveries the run set out to send, by kind.", []string{"kind"}, nil)
	descCalls      = prometheus.NewDesc("imcast_calls_total", "Calls made, by kind.", []string{"kind"}, nil)
	descRefusals   = prometheus.NewDesc("imcast_refusals_total", "Calls the server refused without delivering (quota, throttling), by kind and HTTP status.", []string{"kind", "status"}, nil)
	descRetries    = prometheus.NewDesc("imcast_retries_total", "Calls queued to be sent again, by kind.", []string{"kind"}, nil)
	descPace       = prometheus.NewDesc("imcast_pace_ratio", "The pace in force, a fraction of the kind's quota (below 1 after refusals showed another job on the app).", []string{"kind"}, nil)
	descQuota      = prometheus.NewDesc("imcast_quota", "The quota in force: how many calls or messages a window of window_seconds holds.", []string{"kind", "limit", "window_seconds"}, nil)
	descMargin     = prometheus.NewDesc("imcast_pacing_margin_seconds", "The margin of time the pacer widens every window of the kind by.", []string{"kind"}, nil)
)

// Describe is prometheus.Collector's.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeliveries, descToSend, descCalls, descRefusals, descRetries, descPace, descQuota, descMargin} {
		ch <- d
	}
}

// Collect is prometheus.Collector's.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	m.mu.Lock()
	kinds := m.toSend
	m.mu.Unlock()
	for kind, toSend := range kinds {
		c := m.Progress.Kind(kind)
		if c == nil {
			continue
		}
		k := string(kind)
		counter(descDeliveries, float64(c.Sent.Load()), k, "sent")
		counter(descDeliveries, float64(c.Failed.Load()), k, "failed")
		counter(descDeliveries, float64(c.Uncertain.Load()), k, "uncertain")
		gauge(descToSend, float64(toSend), k)
		counter(descCalls, float64(c.Calls.Load()), k)
		counter(descRetries, float64(c.Retries.Load()), k)
		for status, n := range c.RefusedBy() {
			counter(descRefusals, float64(n), k, strconv.Itoa(status))
		}
		pace, margin := c.Pacing()
		gauge(descPace, pace, k)
		gauge(descMargin, margin.Seconds(), k)
		q := m.Quotas[kind]
		gauge(descQuota, float64(q.Calls.N), k, "calls", strconv.FormatFloat(q.Calls.Window.Seconds(), 'f', -1, 64))
		if q.Messages.N > 0 {
			gauge(descQuota, float64(q.Messages.N), k, "messages", strconv.FormatFloat(q.Messages.Window.Seconds(), 'f', -1, 64))
		}
	}
}

// Serve serves the metrics at http://addr/metrics until stop is called,
// and returns the address it listens on (addr may name port 0).
func (m *Metrics) Serve(addr string) (bound string, stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	return l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
