// Package awserr holds the one error type that every API layer returns for a client-visible failure.
// The front door turns it into the wire form of its protocol (JSON 1.1 for SageMaker, REST-JSON for
// the runtime, XML for S3) in one place; handlers only say what went wrong.
package awserr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an AWS-style error: a code the SDKs turn into a type, a message, an HTTP status.
type Error struct {
	Code    string // e.g. "ValidationException", "ResourceNotFound"
	Message string
	Status  int // HTTP status; 400 for every SageMaker client error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an *Error with the given code, status and formatted message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Status: status}
}

// Validation is SageMaker's unmodeled ValidationException (HTTP 400).
func Validation(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "ValidationException", format, args...)
}

// NotFound is SageMaker's modeled ResourceNotFound (HTTP 400).
func NotFound(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "ResourceNotFound", format, args...)
}

// InUse is SageMaker's modeled ResourceInUse (HTTP 400).
func InUse(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "ResourceInUse", format, args...)
}

// Internal is a server-side failure (HTTP 500). Use it only for faults that are not the client's.
func Internal(format string, args ...any) *Error {
	return New(http.StatusInternalServerError, "InternalFailure", format, args...)
}

// As returns the *Error inside err, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
