package registry

import "container/list"

// lru orders keys by their last update, so that the one updated longest ago is found in O(1) when a table
// is full (a scan of the table per eviction cost seconds of CPU for a burst of new ids). Owned by the
// dispatcher.
type lru[K comparable] struct {
	order *list.List // front: updated last
	at    map[K]*list.Element
}

func newLRU[K comparable]() *lru[K] { return &lru[K]{order: list.New(), at: map[K]*list.Element{}} }

// touch marks k updated now (adding it if new).
func (l *lru[K]) touch(k K) {
	if e, ok := l.at[k]; ok {
		l.order.MoveToFront(e)
		return
	}
	l.at[k] = l.order.PushFront(k)
}

// oldest removes and returns the key updated longest ago.
func (l *lru[K]) oldest() (K, bool) {
	e := l.order.Back()
	if e == nil {
		var zero K
		return zero, false
	}
	k := l.order.Remove(e).(K)
	delete(l.at, k)
	return k, true
}

func (l *lru[K]) len() int { return l.order.Len() }
