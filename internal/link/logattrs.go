package link

import (
	"context"
	"log/slog"
	"slices"
)

// WithAttrs returns a logger that adds attrs to each record it logs, like
// l.With. The standard handlers' WithAttrs format the attributes at once
// into a copy of the handler's state, some hundreds of bytes; this keeps
// only the attributes until a line is logged, which matters for a logger
// per connection when connections are many and mostly silent. The
// attributes come after the record's own.
func WithAttrs(l *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	h := l.Handler()
	if h == slog.DiscardHandler {
		return l // nothing is logged: nothing to keep
	}
	if a, ok := h.(*attrsHandler); ok {
		return slog.New(&attrsHandler{h: a.h, attrs: append(slices.Clip(a.attrs), attrs...)})
	}
	return slog.New(&attrsHandler{h: h, attrs: attrs})
}

type attrsHandler struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (a *attrsHandler) Enabled(ctx context.Context, l slog.Level) bool { return a.h.Enabled(ctx, l) }

func (a *attrsHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone() // AddAttrs must not write into the caller's record
	r.AddAttrs(a.attrs...)
	return a.h.Handle(ctx, r)
}

func (a *attrsHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrsHandler{h: a.h, attrs: append(slices.Clip(a.attrs), attrs...)}
}

func (a *attrsHandler) WithGroup(name string) slog.Handler {
	// The attributes so far stay outside the group.
	return a.h.WithAttrs(a.attrs).WithGroup(name)
}
