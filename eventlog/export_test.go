package eventlog

import "unsafe"

// FileBodies reads every message of the events stream's blocks under storeDir from sequence 1 and returns
// how many it read and how many of their bodies start off a word boundary (for the in-place Arrow read).
func FileBodies(storeDir string) (n, unaligned int, err error) {
	fs := openFileSource(storeDir, 1)
	if fs == nil {
		return 0, 0, errFileStore
	}
	defer fs.close()
	for {
		m, ok, err := fs.read()
		if err != nil || !ok {
			return n, unaligned, err
		}
		n++
		if len(m.data) > 0 && uintptr(unsafe.Pointer(&m.data[0]))%8 != 0 {
			unaligned++
		}
	}
}
