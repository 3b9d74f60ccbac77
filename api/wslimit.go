package api

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// What one websocket client may send. Subscribes beyond the rate are not refused but coalesced: the latest
// one waits for the next token and replaces any that waited before it (a map being panned sends many; only
// the last viewport matters). Messages of any kind beyond their rate cut the client off.
const (
	SubscribeRate  = 4   // subscribes applied per second
	SubscribeBurst = 8   // applied at once after a quiet spell
	MessageRate    = 50  // messages of any kind per second
	MessageBurst   = 200 // before the client is cut off
)

// tokenBucket allows rate events per second with bursts of burst. Not safe for concurrent use.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newTokenBucket(rate, burst float64) *tokenBucket {
	return &tokenBucket{rate: rate, burst: burst, tokens: burst}
}

// take spends a token if there is one; otherwise it returns how long until there is.
func (b *tokenBucket) take(now time.Time) (ok bool, wait time.Duration) {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// clientLimits is one client's rate state. The read loop and the pending-subscribe timer share it.
type clientLimits struct {
	mu       sync.Mutex
	msgs     *tokenBucket // read loop only
	subs     *tokenBucket // guarded by mu
	pending  *pendingSub  // guarded by mu
	timer    *time.Timer  // guarded by mu: applies pending
	coalesce uint64       // subscribes replaced before they were applied
}

type pendingSub struct {
	sub   *subscription
	since *uint64
}

func newClientLimits() *clientLimits {
	return &clientLimits{msgs: newTokenBucket(MessageRate, MessageBurst), subs: newTokenBucket(SubscribeRate, SubscribeBurst)}
}

// message counts one message of any kind; false means the client sends too fast and is cut off.
func (c *client) message() bool {
	if ok, _ := c.limits.msgs.take(time.Now()); !ok {
		c.kick(websocket.ClosePolicyViolation, "too many messages: at most 50 a second")
		return false
	}
	return true
}

// subscribeLimited applies a subscribe now if the client's rate allows, else keeps it (latest wins) for
// when it does.
func (c *client) subscribeLimited(sub *subscription, since *uint64) {
	l := c.limits
	l.mu.Lock()
	ok, wait := l.subs.take(time.Now())
	if ok && l.pending == nil {
		l.mu.Unlock()
		c.h.subscribe(c, sub, since)
		return
	}
	if ok {
		l.subs.tokens++ // the waiting one goes first; this one replaces it
	}
	if l.pending != nil {
		l.coalesce++
	}
	l.pending = &pendingSub{sub: sub, since: since}
	if l.timer == nil {
		l.timer = time.AfterFunc(max(wait, time.Millisecond), c.applyPending)
	}
	l.mu.Unlock()
}

// applyPending is the timer's: it applies the waiting subscribe when a token is there, else waits again.
func (c *client) applyPending() {
	l := c.limits
	l.mu.Lock()
	select {
	case <-c.done:
		l.pending, l.timer = nil, nil
		l.mu.Unlock()
		return
	default:
	}
	ok, wait := l.subs.take(time.Now())
	if !ok {
		l.timer = time.AfterFunc(wait, c.applyPending)
		l.mu.Unlock()
		return
	}
	p := l.pending
	l.pending, l.timer = nil, nil
	l.mu.Unlock()
	if p != nil {
		c.h.subscribe(c, p.sub, p.since)
	}
}

// stopLimits stops the pending-subscribe timer (the client is leaving).
func (c *client) stopLimits() {
	l := c.limits
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.pending = nil
	l.mu.Unlock()
}
