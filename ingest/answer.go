package ingest

import "strconv"

// AppendAnswer appends the JSON answer of spec/events.md for res.
func AppendAnswer(buf []byte, res *Result) []byte {
	buf = append(buf, `{"accepted":`...)
	buf = strconv.AppendInt(buf, int64(res.Accepted), 10)
	buf = append(buf, `,"rejected":`...)
	buf = strconv.AppendInt(buf, int64(res.Rejected), 10)
	buf = append(buf, `,"errors":[`...)
	for i, e := range res.Errors {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"line":`...)
		buf = strconv.AppendInt(buf, int64(e.Line), 10)
		buf = append(buf, `,"error":`...)
		buf = AppendQuoted(buf, e.Err.Error())
		buf = append(buf, '}')
	}
	return append(buf, "]}\n"...)
}

// ContentTypeArrow is the media type of the binary fast path (an Arrow IPC stream in the engine schema).
const ContentTypeArrow = "application/vnd.apache.arrow.stream"
