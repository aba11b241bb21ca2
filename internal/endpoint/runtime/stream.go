package runtime

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/aws/smithy-go/eventstream"
)

// tgiToken and tgiStreamEvent are one server-sent event of TGI's stream: `data:{...}` then a blank
// line, the last event carrying the whole generated text (and details when asked).
type tgiToken struct {
	ID      int32   `json:"id"`
	Text    string  `json:"text"`
	Logprob float32 `json:"logprob"`
	Special bool    `json:"special"`
}

type tgiStreamEvent struct {
	Index         int         `json:"index"`
	Token         tgiToken    `json:"token"`
	GeneratedText *string     `json:"generated_text"`
	Details       *tgiDetails `json:"details"`
}

// eventWriter writes AWS event-stream messages (prelude with lengths and CRC, headers, payload,
// message CRC), flushing each so the client sees tokens as they come.
type eventWriter struct {
	w   http.ResponseWriter
	enc *eventstream.Encoder
}

func (e *eventWriter) write(msg eventstream.Message) error {
	if err := e.enc.Encode(e.w, msg); err != nil {
		return err
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// payloadPart sends bytes of the model's response as a PayloadPart event.
func (e *eventWriter) payloadPart(b []byte) error {
	var h eventstream.Headers
	h.Set(":event-type", eventstream.StringValue("PayloadPart"))
	h.Set(":content-type", eventstream.StringValue("application/octet-stream"))
	h.Set(":message-type", eventstream.StringValue("event"))
	return e.write(eventstream.Message{Headers: h, Payload: b})
}

// modelStreamError ends the stream with the ModelStreamError exception event.
func (e *eventWriter) modelStreamError(code, msg string) error {
	var h eventstream.Headers
	h.Set(":exception-type", eventstream.StringValue("ModelStreamError"))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	h.Set(":message-type", eventstream.StringValue("exception"))
	payload, _ := json.Marshal(map[string]string{"Message": msg, "ErrorCode": code})
	return e.write(eventstream.Message{Headers: h, Payload: payload})
}

func sse(ev tgiStreamEvent) []byte {
	var b bytes.Buffer
	b.WriteString("data:")
	_ = json.NewEncoder(&b).Encode(ev) // ends with "\n"
	b.WriteString("\n")
	return b.Bytes()
}

// stream answers InvokeEndpointWithResponseStream: one PayloadPart per TGI token event. Each event is
// held back until the next token arrives, so that the last one can carry generated_text.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, name string, t Target, c *call) {
	if c.list {
		h.modelError(w, name, t.Variant, invalid("streaming takes a single string in `inputs`, not a list"))
		return
	}
	if c.bestOf > 1 {
		h.modelError(w, name, t.Variant, invalid("`best_of` != 1 is not supported when streaming tokens"))
		return
	}
	c.opt.Logprobs = true // every token event carries its log-probability
	gens, err := h.start(r.Context(), t, c)
	if err != nil {
		h.startError(w, name, t.Variant, err)
		return
	}
	g, seed := gens[0].gen, gens[0].seed
	defer g.Cancel() // a no-op once it has ended; stops it when the client goes away
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set(headerStreamContent, "text/event-stream")
	w.Header().Set(headerVariant, t.Variant)
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // the response starts now, even while the request waits in the queue
	}
	ew := &eventWriter{w: w, enc: eventstream.NewEncoder()}
	var held *tgiStreamEvent
	index := 0
	for {
		toks, done, err := g.Next(r.Context())
		if r.Context().Err() != nil {
			return
		}
		if done {
			if err != nil {
				_ = ew.modelStreamError("ModelError", err.Error())
				return
			}
			break
		}
		for _, tk := range toks {
			if tk.ID < 0 && held != nil { // text held back until the end (a possible stop sequence)
				held.Token.Text += tk.Text
				continue
			}
			if held != nil {
				if ew.payloadPart(sse(*held)) != nil {
					return
				}
			}
			index++
			held = &tgiStreamEvent{Index: index, Token: tgiToken{ID: tk.ID, Text: tk.Text, Logprob: tk.Logprob}}
		}
	}
	res, _ := g.Wait(r.Context())
	if held == nil { // nothing was generated: the model ended at once
		index++
		held = &tgiStreamEvent{Index: index, Token: tgiToken{ID: -1, Special: true}}
	}
	text := c.output(c.inputs[0], []generation{{res, seed}}, nil).GeneratedText
	held.GeneratedText = &text
	if c.details {
		held.Details = c.detailsOf(res, seed)
	}
	_ = ew.payloadPart(sse(*held))
}
