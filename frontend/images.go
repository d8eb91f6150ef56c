package frontend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// Question images: an admin uploads an image and gets a reference,
// [img:<sha256>.<ext>], to put in a question's stem or options. The exam
// page shows it in place. Images are named by their content, so a name
// never changes meaning and browsers may cache them for good.

var imageName = regexp.MustCompile(`^[0-9a-f]{64}\.(png|jpg|gif|webp)$`)

func (s *Server) mountImages() {
	s.mux.Handle("POST /api/admin/images", s.api([]store.Role{store.RoleAdmin}, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, exam.MaxImage))
		if err != nil {
			return ErrTooLarge
		}
		ext, err := exam.CheckImage(b)
		if err != nil {
			return err
		}
		name, err := storeByContent(r.Context(), s.images, b, ext)
		if err != nil {
			return err
		}
		s.audit(r.Context(), &a.User.ID, "image_uploaded", "image", name, clientIP(r), nil)
		return WriteJSON(w, http.StatusCreated, map[string]string{"ref": "[img:" + name + "]", "url": "/bank-images/" + name})
	}))
	// Any logged-in user may load question images: candidates see them on
	// their papers, staff in the bank.
	s.mux.Handle("GET /bank-images/{name}", s.page(nil, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		name := r.PathValue("name")
		if !imageName.MatchString(name) {
			return store.ErrNotFound
		}
		return serveFile(w, r, s.images, name, "private, max-age=31536000, immutable")
	}))
}

// storeByContent stores b under the hex SHA-256 of its content (so a name
// never changes meaning) and returns that name.
func storeByContent(ctx context.Context, files *store.Files, b []byte, ext string) (string, error) {
	sum := sha256.Sum256(b)
	name := hex.EncodeToString(sum[:]) + "." + ext
	return name, files.Write(ctx, name, b)
}
