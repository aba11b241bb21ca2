package s3api

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// S3's client errors, with the codes and messages that S3 itself sends.
func s3err(status int, code, msg string) *awserr.Error {
	return &awserr.Error{Status: status, Code: code, Message: msg}
}

var (
	errNoSuchBucket      = s3err(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
	errNoSuchKey         = s3err(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	errNoSuchUpload      = s3err(http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	errBucketNotEmpty    = s3err(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty")
	errBucketOwned       = s3err(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
	errInvalidBucketName = s3err(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
	errInvalidKey        = s3err(http.StatusBadRequest, "InvalidArgument", "The object key must not be empty.")
	errKeyTooLong        = s3err(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
	errInvalidRange      = s3err(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
	errMalformedXML      = s3err(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
	errIncompleteBody    = s3err(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	errInvalidDigest     = s3err(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
	errBadMD5            = s3err(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
	errInvalidPart       = s3err(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	errInvalidPartOrder  = s3err(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
	errEntityTooSmall    = s3err(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
	errEntityTooLarge    = s3err(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	errPreconditionFail  = s3err(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	errMethodNotAllowed  = s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	errChunkedNotDecoded = s3err(http.StatusBadRequest, "NotImplemented", "aws-chunked request bodies must be decoded before they reach the S3 handler")
)

func invalidArgument(msg string) *awserr.Error {
	return s3err(http.StatusBadRequest, "InvalidArgument", msg)
}

// invalidURI is S3's answer to a request whose key is not text it can hold (AWS answers a
// non-UTF-8 key with 400 InvalidURI); detail names the problem.
func invalidURI(detail string) *awserr.Error {
	return s3err(http.StatusBadRequest, "InvalidURI", "Couldn't parse the specified URI: "+detail+".")
}

func invalidRequest(msg string) *awserr.Error {
	return s3err(http.StatusBadRequest, "InvalidRequest", msg)
}

func notImplemented(what string) *awserr.Error {
	return s3err(http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented: "+what)
}

type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
	UploadID   string   `xml:"UploadId,omitempty"`
	Resource   string   `xml:"Resource"`
	RequestID  string   `xml:"RequestId"`
	HostID     string   `xml:"HostId"`
}

// WriteError writes err as S3's XML error document. Errors that are not an *awserr.Error are
// internal faults (HTTP 500 InternalError); their text is not shown to the client. A HEAD
// response carries no body, as with S3. The front door uses it for authentication failures so
// that every S3 error has one shape.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := awserr.As(err)
	if e == nil {
		e = s3err(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	}
	bucket, key := splitPath(r.URL.Path)
	id := w.Header().Get("X-Amz-Request-Id")
	if id == "" {
		id = newRequestID()
		w.Header().Set("X-Amz-Request-Id", id)
	}
	body := errorBody{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: id, HostID: id}
	switch e.Code {
	case "NoSuchBucket", "BucketNotEmpty", "BucketAlreadyOwnedByYou", "InvalidBucketName":
		body.BucketName = bucket
	case "NoSuchKey":
		body.Key = key
	case "NoSuchUpload":
		body.UploadID = r.URL.Query().Get("uploadId")
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Del("Content-Length")
	w.Header().Del("ETag")
	w.Header().Del("Last-Modified")
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	writeXMLBody(w, body)
}

// splitPath splits a path-style request path into bucket and key.
func splitPath(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// asClientError keeps an *awserr.Error found in err's chain (the front door's body reader
// reports a bad chunk signature that way) and turns any other read failure into IncompleteBody.
func asClientError(err error) error {
	var e *awserr.Error
	if errors.As(err, &e) {
		return e
	}
	return errIncompleteBody
}
