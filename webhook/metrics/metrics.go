// Package metrics holds the Prometheus collectors of the admission webhook:
// admissions by webhook and result, their latency, policy evaluations and
// address reservations. Collectors live in a Recorder registered on the
// registry the caller passes in (the manager's), never on a global one.
package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of an admission, the values of the "result" label.
const (
	ResultAllowed = "allowed" // allowed without a patch
	ResultPatched = "patched" // allowed with a patch
	ResultDenied  = "denied"  // refused: policy, bad input, conflict
	ResultErrored = "errored" // refused because something inside failed
)

// Recorder records what the webhooks do. A nil *Recorder records nothing, so
// handlers built for unit tests need none.
type Recorder struct {
	admissions   *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	evaluations  *prometheus.HistogramVec
	reservations *prometheus.CounterVec
	rollbacks    prometheus.Counter
}

// New builds a Recorder and registers its collectors on reg.
func New(reg prometheus.Registerer) (*Recorder, error) {
	r := &Recorder{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "webhook", Name: "admissions_total",
			Help: "Admission requests handled, by webhook, operation and result (allowed, patched, denied, errored).",
		}, []string{"webhook", "operation", "result"}),
		// Buckets reach the API server's 10 s webhook timeout; most
		// admissions should land in the low milliseconds.
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth", Subsystem: "webhook", Name: "admission_duration_seconds",
			Help:    "Time to answer an admission request, by webhook.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"webhook"}),
		evaluations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth", Subsystem: "webhook", Name: "policy_evaluation_duration_seconds",
			Help:    "Time to evaluate the attachment policies for one pod, by result (attach, none, deny, error).",
			Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
		}, []string{"result"}),
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "webhook", Name: "reservations_total",
			Help: "Addresses reserved at admission, by pool and result (reserved, released); failed reservations have pool \"\" and the reason.",
		}, []string{"pool", "result"}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "berth", Subsystem: "webhook", Name: "reservation_rollbacks_total",
			Help: "Admissions that released their reservations because a later step failed.",
		}),
	}
	for _, c := range []prometheus.Collector{r.admissions, r.latency, r.evaluations, r.reservations, r.rollbacks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering webhook metrics (one Recorder per registry): %w", err)
		}
	}
	return r, nil
}

// Admission records one answered request.
func (r *Recorder) Admission(webhook, operation, result string, took time.Duration) {
	if r == nil {
		return
	}
	r.admissions.WithLabelValues(webhook, operation, result).Inc()
	r.latency.WithLabelValues(webhook).Observe(took.Seconds())
}

// Evaluation records one policy evaluation; result is attach, none, deny or error.
func (r *Recorder) Evaluation(result string, took time.Duration) {
	if r == nil {
		return
	}
	r.evaluations.WithLabelValues(result).Observe(took.Seconds())
}

// Reserved counts an address reserved from pool.
func (r *Recorder) Reserved(pool string) {
	if r == nil {
		return
	}
	r.reservations.WithLabelValues(pool, "reserved").Inc()
}

// ReserveFailed counts a reservation refused by the allocator, by reason
// (exhausted, taken, not-in-pool, pool-not-found, pool-disabled, not-ready, error).
func (r *Recorder) ReserveFailed(reason string) {
	if r == nil {
		return
	}
	r.reservations.WithLabelValues("", reason).Inc()
}

// RolledBack counts an admission whose reservations were released, and each
// released address by pool.
func (r *Recorder) RolledBack(pools []string) {
	if r == nil {
		return
	}
	r.rollbacks.Inc()
	for _, p := range pools {
		r.reservations.WithLabelValues(p, "released").Inc()
	}
}
