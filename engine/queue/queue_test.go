package queue

import (
	"testing"
	"time"
)

func TestBlockWaitsForRoomOrStop(t *testing.T) {
	q := New[int]("shard-0", 2, Block)
	stop := make(chan struct{})
	if !q.Push(1, stop) || !q.Push(2, stop) {
		t.Fatal("pushes into room refused")
	}
	pushed := make(chan bool)
	go func() { pushed <- q.Push(3, stop) }()
	select {
	case <-pushed:
		t.Fatal("a push into a full blocking queue returned before there was room")
	case <-time.After(20 * time.Millisecond):
	}
	if v, _ := q.Pop(); v != 1 {
		t.Fatalf("popped %d, want 1 (FIFO)", v)
	}
	if !<-pushed {
		t.Fatal("the waiting push failed once there was room")
	}
	go func() { pushed <- q.Push(4, stop) }()
	close(stop)
	if <-pushed {
		t.Fatal("a push waiting on a full queue succeeded after stop")
	}
	st := q.Stat()
	if st.Name != "shard-0" || st.Len != 2 || st.Limit != 2 || st.Pushed != 3 || st.Full != 2 || st.Blocked <= 0 {
		t.Errorf("stat %+v", st)
	}
}

func TestRejectRefusesWhenFull(t *testing.T) {
	q := New[[]byte]("ws-client", 1, Reject)
	if !q.Push([]byte("a"), nil) {
		t.Fatal("push into room refused")
	}
	if q.Push([]byte("b"), nil) || q.TryPush([]byte("c")) {
		t.Fatal("a full rejecting queue took more")
	}
	if n := q.Drain(); n != 1 || q.Len() != 0 {
		t.Fatalf("drained %d, %d left", n, q.Len())
	}
	q.Close()
	q.Close()
	if _, ok := q.Pop(); ok {
		t.Fatal("pop from a closed empty queue")
	}
	var fam Stat
	fam.Sum(q.Stat())
	fam.Sum(New[[]byte]("ws-client", 3, Reject).Stat())
	if fam.Queues != 2 || fam.Limit != 4 || fam.Full != 2 || fam.Pushed != 1 {
		t.Errorf("family %+v", fam)
	}
}

func TestDropOldestKeepsTheNewest(t *testing.T) {
	q := New[int]("hub-mailbox", 1, DropOldest)
	for i := 1; i <= 3; i++ {
		if !q.Push(i, nil) {
			t.Fatalf("push %d refused", i)
		}
	}
	if v, _ := q.Pop(); v != 3 || q.Len() != 0 {
		t.Fatalf("popped %d with %d left, want the newest (3) alone", v, q.Len())
	}
	if st := q.Stat(); st.Pushed != 3 || st.Full != 2 || st.Policy.String() != "drop_oldest" {
		t.Errorf("stat %+v", st)
	}
}

func TestMailboxMergesWhatWasNotTaken(t *testing.T) {
	m := NewMailbox("hub-mailbox", func(old, nu []int) []int { return append(old, nu...) })
	m.Put([]int{1})
	m.Put([]int{2})
	m.Put([]int{3})
	v, ok := m.Take()
	if !ok || len(v) != 3 || v[0] != 1 || v[2] != 3 {
		t.Fatalf("took %v %v, want [1 2 3] merged in order", v, ok)
	}
	if st := m.Stat(); st.Len != 0 || st.Pushed != 3 || st.Full != 2 || st.Policy.String() != "merge" {
		t.Errorf("stat %+v", st)
	}
	got := make(chan bool)
	go func() { _, ok := m.Take(); got <- ok }()
	m.Close()
	if <-got {
		t.Error("Take after Close returned an item")
	}
	m.Put([]int{4}) // ignored
	m.Close()
}
