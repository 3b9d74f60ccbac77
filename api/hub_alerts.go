package api

// Broadcast queues msg for every client subscribed to layer (alerts, zones), without blocking: a client whose
// queue is full is coalesced like for deltas (it gets a fresh snapshot; alerts it missed are at
// GET /api/v1/alerts). Safe from any goroutine.
func (h *Hub) Broadcast(layer string, msg []byte) {
	f := newFrame(msg, 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for c := range h.clients {
		if c.sub != nil && c.sub.Layers[layer] {
			h.enqueue(c, f)
		}
	}
}
