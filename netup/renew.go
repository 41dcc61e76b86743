package netup

import "time"

// minRenewRetry is RFC 2131 §4.4.5's floor between renewal retries.
const minRenewRetry = 60 * time.Second

// nextRenewal says when to next try to renew l (RFC 2131 §4.4.5): the
// first attempt at T1 (at once if that has passed); after a failed attempt
// (retry), half of the time left to T2 (renewing) or to expiry
// (rebinding), at least a minute apart and never past expiry. lost is true
// when now is at or past expiry: the lease is gone. An infinite lease is
// never renewed (ok=false).
func nextRenewal(l Lease, now time.Time, retry bool) (at time.Time, ok, lost bool) {
	if l.Infinite {
		return time.Time{}, false, false
	}
	t1, t2, exp := l.Acquired.Add(l.T1), l.Acquired.Add(l.T2), l.Expires()
	if !now.Before(exp) {
		return exp, true, true
	}
	if now.Before(t1) {
		return t1, true, false
	}
	if !retry {
		return now, true, false
	}
	limit := t2
	if !now.Before(t2) {
		limit = exp
	}
	wait := max(limit.Sub(now)/2, minRenewRetry)
	at = now.Add(wait)
	if at.After(exp) {
		at = exp
	}
	return at, true, false
}

// retryBackoff is the wait before the n-th (1-based) new DHCP discovery on
// a link that got no lease: 2 s doubling to one minute.
func retryBackoff(n int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < n && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}
