package basemap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// A read-only reader of the SQLite file format (sqlite.org/fileformat.html), just enough to read an MBTiles
// archive without a SQLite library: the schema table, table b-trees by rowid and full scans of tables and
// WITHOUT ROWID tables (index b-trees). Every length read from the file is checked against the page and file
// size before use, so a damaged or hostile file is an error, never a crash.

type sqliteDB struct {
	r        io.ReaderAt
	size     int64
	pageSize int
	usable   int
	pages    uint32
}

// maxSQLitePages bounds the pages walked by one scan (a loop in a damaged file).
const maxSQLitePages = 1 << 26

func openSQLite(r io.ReaderAt, size int64) (*sqliteDB, error) {
	h := make([]byte, 100)
	if _, err := r.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("cannot read the SQLite header: %w", err)
	}
	if string(h[:16]) != "SQLite format 3\x00" {
		return nil, errors.New("not a SQLite database (no \"SQLite format 3\" header)")
	}
	ps := int(binary.BigEndian.Uint16(h[16:]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("SQLite page size %d is not a power of two from 512", ps)
	}
	if enc := binary.BigEndian.Uint32(h[56:]); enc != 0 && enc != 1 {
		return nil, fmt.Errorf("SQLite text encoding %d: only UTF-8 is read", enc)
	}
	db := &sqliteDB{r: r, size: size, pageSize: ps, usable: ps - int(h[20]), pages: uint32(size / int64(ps))}
	if db.usable < 480 {
		return nil, fmt.Errorf("SQLite usable page size %d is too small", db.usable)
	}
	return db, nil
}

func (db *sqliteDB) page(n uint32) ([]byte, error) {
	if n < 1 || n > db.pages {
		return nil, fmt.Errorf("SQLite page %d outside the file's %d pages", n, db.pages)
	}
	b := make([]byte, db.pageSize)
	if _, err := db.r.ReadAt(b, int64(n-1)*int64(db.pageSize)); err != nil {
		return nil, fmt.Errorf("cannot read SQLite page %d: %w", n, err)
	}
	return b, nil
}

func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 9 && i < len(b); i++ {
		if i == 8 {
			return v<<8 | uint64(b[i]), 9
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// payload reads a cell's whole payload (following overflow pages) from page p at offset off, where the cell's
// payload of total size n starts.
func (db *sqliteDB) payload(p []byte, off int, n uint64, index bool) ([]byte, error) {
	u := uint64(db.usable)
	x := u - 35
	if index {
		x = (u-12)*64/255 - 23
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("SQLite cell payload of %d bytes", n)
	}
	local := n
	if n > x {
		m := (u-12)*32/255 - 23
		k := m + (n-m)%(u-4)
		local = m
		if k <= x {
			local = k
		}
	}
	if off+int(local) > len(p) {
		return nil, errors.New("SQLite cell runs past its page")
	}
	out := make([]byte, 0, n)
	out = append(out, p[off:off+int(local)]...)
	if local == n {
		return out, nil
	}
	if off+int(local)+4 > len(p) {
		return nil, errors.New("SQLite overflow pointer runs past its page")
	}
	next := binary.BigEndian.Uint32(p[off+int(local):])
	for hops := 0; uint64(len(out)) < n; hops++ {
		if hops > int(db.pages) {
			return nil, errors.New("SQLite overflow chain loops")
		}
		op, err := db.page(next)
		if err != nil {
			return nil, err
		}
		next = binary.BigEndian.Uint32(op)
		take := min(n-uint64(len(out)), u-4)
		out = append(out, op[4:4+take]...)
	}
	return out, nil
}

// record decodes a record into values: nil, int64, float64, string or []byte.
func record(b []byte) ([]any, error) {
	hl, n := varint(b)
	if n == 0 || hl > uint64(len(b)) || hl < uint64(n) {
		return nil, errors.New("bad SQLite record header")
	}
	var types []uint64
	for i := n; i < int(hl); {
		t, m := varint(b[i:])
		if m == 0 {
			return nil, errors.New("bad SQLite record header")
		}
		types = append(types, t)
		i += m
	}
	vals := make([]any, len(types))
	off := int(hl)
	for i, t := range types {
		var sz int
		switch {
		case t == 0 || t == 8 || t == 9:
			sz = 0
		case t >= 1 && t <= 4:
			sz = int(t)
		case t == 5:
			sz = 6
		case t == 6 || t == 7:
			sz = 8
		case t >= 12:
			sz = int((t - 12) / 2)
		default:
			return nil, fmt.Errorf("SQLite serial type %d", t)
		}
		if off+sz > len(b) {
			return nil, errors.New("SQLite record runs past its payload")
		}
		v := b[off : off+sz]
		switch {
		case t == 0:
			vals[i] = nil
		case t == 8:
			vals[i] = int64(0)
		case t == 9:
			vals[i] = int64(1)
		case t <= 6:
			x := int64(int8(v[0]))
			for _, c := range v[1:] {
				x = x<<8 | int64(c)
			}
			vals[i] = x
		case t == 7:
			vals[i] = math.Float64frombits(binary.BigEndian.Uint64(v))
		case t%2 == 0:
			vals[i] = v
		default:
			vals[i] = string(v)
		}
		off += sz
	}
	return vals, nil
}

// scan calls fn with the rowid (0 for WITHOUT ROWID tables) and values of every row of the b-tree at root.
func (db *sqliteDB) scan(root uint32, fn func(rowid int64, vals []any) error) error {
	stack := []uint32{root}
	for seen := 0; len(stack) > 0; seen++ {
		if seen > maxSQLitePages || seen > int(db.pages)+1 {
			return errors.New("SQLite b-tree loops")
		}
		pn := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p, err := db.page(pn)
		if err != nil {
			return err
		}
		hdr := 0
		if pn == 1 {
			hdr = 100
		}
		if hdr+8 > len(p) {
			return errors.New("SQLite page header past the page")
		}
		kind := p[hdr]
		ncell := int(binary.BigEndian.Uint16(p[hdr+3:]))
		cells := hdr + 8
		interior := kind == 0x05 || kind == 0x02
		if interior {
			cells = hdr + 12
		}
		if cells+2*ncell > len(p) {
			return errors.New("SQLite cell pointers past the page")
		}
		if interior {
			stack = append(stack, binary.BigEndian.Uint32(p[hdr+8:]))
		}
		for i := 0; i < ncell; i++ {
			c := int(binary.BigEndian.Uint16(p[cells+2*i:]))
			if c+4 > len(p) {
				return errors.New("SQLite cell past the page")
			}
			switch kind {
			case 0x05: // table interior: child, rowid
				stack = append(stack, binary.BigEndian.Uint32(p[c:]))
			case 0x0d, 0x0a, 0x02: // table leaf, index leaf, index interior
				o := c
				if kind == 0x02 {
					stack = append(stack, binary.BigEndian.Uint32(p[c:]))
					o += 4
				}
				n, m := varint(p[o:])
				if m == 0 {
					return errors.New("bad SQLite cell")
				}
				o += m
				var rowid int64
				if kind == 0x0d {
					r, m := varint(p[o:])
					if m == 0 {
						return errors.New("bad SQLite cell")
					}
					rowid, o = int64(r), o+m
				}
				pl, err := db.payload(p, o, n, kind != 0x0d)
				if err != nil {
					return err
				}
				vals, err := record(pl)
				if err != nil {
					return err
				}
				if err := fn(rowid, vals); err != nil {
					return err
				}
			default:
				return fmt.Errorf("SQLite page %d has type %#x, not a b-tree page", pn, kind)
			}
		}
	}
	return nil
}

// row returns the values of the row with rowid in the table b-tree at root (nil when absent).
func (db *sqliteDB) row(root uint32, rowid int64) ([]any, error) {
	pn := root
	for depth := 0; depth < 64; depth++ {
		p, err := db.page(pn)
		if err != nil {
			return nil, err
		}
		hdr := 0
		if pn == 1 {
			hdr = 100
		}
		kind := p[hdr]
		ncell := int(binary.BigEndian.Uint16(p[hdr+3:]))
		switch kind {
		case 0x05:
			next := binary.BigEndian.Uint32(p[hdr+8:])
			if hdr+12+2*ncell > len(p) {
				return nil, errors.New("SQLite cell pointers past the page")
			}
			for i := 0; i < ncell; i++ {
				c := int(binary.BigEndian.Uint16(p[hdr+12+2*i:]))
				if c+5 > len(p) {
					return nil, errors.New("SQLite cell past the page")
				}
				key, m := varint(p[c+4:])
				if m == 0 {
					return nil, errors.New("bad SQLite cell")
				}
				if int64(key) >= rowid {
					next = binary.BigEndian.Uint32(p[c:])
					break
				}
			}
			pn = next
		case 0x0d:
			if hdr+8+2*ncell > len(p) {
				return nil, errors.New("SQLite cell pointers past the page")
			}
			for i := 0; i < ncell; i++ {
				c := int(binary.BigEndian.Uint16(p[hdr+8+2*i:]))
				if c >= len(p) {
					return nil, errors.New("SQLite cell past the page")
				}
				n, m := varint(p[c:])
				r, m2 := varint(p[c+m:])
				if m == 0 || m2 == 0 {
					return nil, errors.New("bad SQLite cell")
				}
				if int64(r) == rowid {
					pl, err := db.payload(p, c+m+m2, n, false)
					if err != nil {
						return nil, err
					}
					return record(pl)
				}
			}
			return nil, nil
		default:
			return nil, fmt.Errorf("SQLite page %d has type %#x, not a table b-tree page", pn, kind)
		}
	}
	return nil, errors.New("SQLite b-tree deeper than 64")
}

// sqliteObject is a row of the schema table.
type sqliteObject struct {
	typ, name string
	root      uint32
	sql       string
}

func (db *sqliteDB) schema() (map[string]sqliteObject, error) {
	out := map[string]sqliteObject{}
	err := db.scan(1, func(_ int64, v []any) error {
		if len(v) < 5 {
			return errors.New("SQLite schema row with fewer than 5 columns")
		}
		o := sqliteObject{}
		o.typ, _ = v[0].(string)
		o.name, _ = v[1].(string)
		if r, ok := v[3].(int64); ok && r > 0 && r < 1<<32 {
			o.root = uint32(r)
		}
		o.sql, _ = v[4].(string)
		out[strings.ToLower(o.name)] = o
		return nil
	})
	return out, err
}

// columns returns the column names of a CREATE TABLE statement, lower case, in order (constraints skipped).
func columns(sql string) []string {
	i, j := strings.IndexByte(sql, '('), strings.LastIndexByte(sql, ')')
	if i < 0 || j <= i {
		return nil
	}
	var out []string
	depth, start := 0, i+1
	body := sql[:j]
	for k := i + 1; k <= j; k++ {
		if k < j {
			switch body[k] {
			case '(':
				depth++
				continue
			case ')':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		f := strings.Fields(strings.Trim(strings.TrimSpace(body[start:k]), "\"`[]"))
		start = k + 1
		if len(f) == 0 {
			continue
		}
		name := strings.ToLower(strings.Trim(f[0], "\"`[]"))
		switch name {
		case "primary", "unique", "constraint", "check", "foreign":
			continue
		}
		out = append(out, name)
	}
	return out
}
