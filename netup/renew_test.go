package netup

import (
	"testing"
	"time"
)

func TestNextRenewal(t *testing.T) {
	acq := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var l Lease
	l.Acquired = acq
	l.setTimes(1000*time.Second, 500*time.Second, 875*time.Second)
	t1, t2, exp := acq.Add(500*time.Second), acq.Add(875*time.Second), acq.Add(1000*time.Second)
	cases := []struct {
		name     string
		now      time.Time
		retry    bool
		want     time.Time
		lost     bool
		whyWants string
	}{
		{"before T1", acq.Add(time.Second), false, t1, false, "first renewal at T1"},
		{"late first attempt", t1.Add(time.Minute), false, t1.Add(time.Minute), false, "T1 passed: at once"},
		{"retry at T1", t1, true, t1.Add(t2.Sub(t1) / 2), false, "half the time to T2"},
		{"retry near T2", t2.Add(-30 * time.Second), true, t2.Add(-30 * time.Second).Add(minRenewRetry), false, "at least a minute"},
		{"retry at T2", t2, true, t2.Add(exp.Sub(t2) / 2), false, "rebinding: half the time to expiry (62.5s, over a minute)"},
		{"retry near expiry", exp.Add(-10 * time.Second), true, exp, false, "never past expiry"},
		{"at expiry", exp, false, exp, true, "lost"},
		{"retry at expiry", exp, true, exp, true, "lost"},
	}
	for _, tc := range cases {
		at, ok, lost := nextRenewal(l, tc.now, tc.retry)
		if !ok || lost != tc.lost || !at.Equal(tc.want) {
			t.Errorf("%s (%s): got %v ok=%v lost=%v, want %v lost=%v", tc.name, tc.whyWants, at, ok, lost, tc.want, tc.lost)
		}
	}
	var inf Lease
	inf.setTimes(infiniteLease, 0, 0)
	if _, ok, lost := nextRenewal(inf, acq, false); ok || lost {
		t.Fatal("infinite lease scheduled for renewal")
	}
}

func TestSetTimesRepairsServerValues(t *testing.T) {
	cases := []struct {
		name                  string
		lease, t1, t2         time.Duration
		wantL, wantT1, wantT2 time.Duration
	}{
		{"defaults", 3600 * time.Second, 0, 0, 3600 * time.Second, 1800 * time.Second, 3150 * time.Second},
		{"zero lease", 0, 0, 0, 24 * time.Hour, 12 * time.Hour, 21 * time.Hour},
		{"tiny lease", time.Second, 0, 0, minLease, minLease / 2, minLease * 7 / 8},
		{"t1 past lease", 100 * time.Second, 200 * time.Second, 0, 100 * time.Second, 50 * time.Second, 87500 * time.Millisecond},
		{"t2 before t1", 100 * time.Second, 60 * time.Second, 30 * time.Second, 100 * time.Second, 60 * time.Second, 87500 * time.Millisecond},
		{"server values", 100 * time.Second, 20 * time.Second, 40 * time.Second, 100 * time.Second, 20 * time.Second, 40 * time.Second},
	}
	for _, tc := range cases {
		var l Lease
		l.setTimes(tc.lease, tc.t1, tc.t2)
		if l.Infinite || l.Duration != tc.wantL || l.T1 != tc.wantT1 || l.T2 != tc.wantT2 {
			t.Errorf("%s: got %v/%v/%v, want %v/%v/%v", tc.name, l.Duration, l.T1, l.T2, tc.wantL, tc.wantT1, tc.wantT2)
		}
	}
}

func TestRetryBackoff(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n < 12; n++ {
		d := retryBackoff(n)
		if d < prev || d > time.Minute || d <= 0 {
			t.Fatalf("backoff %d = %v after %v", n, d, prev)
		}
		prev = d
	}
	if prev != time.Minute {
		t.Fatalf("backoff tops out at %v", prev)
	}
}
