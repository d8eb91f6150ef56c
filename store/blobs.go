package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Blobs is object storage for recordings and evidence stills in a
// cluster: every node writes there and reads from there, so a recording
// plays from any node and outlives the node that made it.
type Blobs interface {
	// Put stores the file at path as key.
	Put(ctx context.Context, key, path, contentType string) error
	// Open reads a stored object: seekable, for ranged replies.
	Open(ctx context.Context, key string) (Blob, error)
	// Delete removes key; a key already gone is no error.
	Delete(ctx context.Context, key string) error
	// List returns the keys that start with prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// Blob is an object being read.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// ErrBlobURL means a --blob-store URL could not be understood.
var ErrBlobURL = errors.New("store: blob store URL")

// S3 is an S3-compatible object store (AWS S3, MinIO, Versity, Ceph...).
type S3 struct {
	c      *minio.Client
	bucket string
}

// OpenS3 connects to s3://BUCKET?endpoint=HOST:PORT[&secure=false][&region=R]
// with an access key and secret, and makes the bucket if it is missing.
func OpenS3(ctx context.Context, rawURL, access, secret string) (*S3, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("%w: want s3://BUCKET?endpoint=HOST:PORT, got %q", ErrBlobURL, rawURL)
	}
	q := u.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	secure := true
	if v := q.Get("secure"); v != "" {
		if secure, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("%w: secure=%q: want true or false", ErrBlobURL, v)
		}
	}
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: secure, Region: q.Get("region")})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBlobURL, err)
	}
	s := &S3{c: c, bucket: u.Host}
	ok, err := c.BucketExists(ctx, s.bucket)
	if err != nil {
		return nil, fmt.Errorf("store: blob store %s: %w", endpoint, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: q.Get("region")}); err != nil {
			return nil, fmt.Errorf("store: make bucket %s: %w", s.bucket, err)
		}
	}
	return s, nil
}

// Put implements Blobs.
func (s *S3) Put(ctx context.Context, key, path, contentType string) error {
	_, err := s.c.FPutObject(ctx, s.bucket, key, path, minio.PutObjectOptions{ContentType: contentType})
	if err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	return nil
}

// Open implements Blobs.
func (s *S3) Open(ctx context.Context, key string) (Blob, error) {
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", key, err)
	}
	st, err := o.Stat()
	if err != nil {
		o.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("store: stat %s: %w", key, err)
	}
	return &s3Blob{Object: o, size: st.Size, mod: st.LastModified}, nil
}

type s3Blob struct {
	*minio.Object
	size int64
	mod  time.Time
}

func (b *s3Blob) Size() int64        { return b.size }
func (b *s3Blob) ModTime() time.Time { return b.mod }

// Delete implements Blobs.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && minio.ToErrorResponse(err).Code != "NoSuchKey" {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// List implements Blobs.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("store: list %s: %w", prefix, o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys, nil
}

// Ping implements Blobs.
func (s *S3) Ping(ctx context.Context) error {
	if _, err := s.c.BucketExists(ctx, s.bucket); err != nil {
		return fmt.Errorf("store: blob store: %w", err)
	}
	return nil
}

// SplitCredentials reads "ACCESS_KEY:SECRET" (the form of
// EXAMHALL_BLOB_CREDENTIALS_FILE).
func SplitCredentials(v string) (access, secret string, err error) {
	access, secret, ok := strings.Cut(strings.TrimSpace(v), ":")
	if !ok || access == "" || secret == "" {
		return "", "", errors.New("want ACCESS_KEY:SECRET")
	}
	return access, secret, nil
}
