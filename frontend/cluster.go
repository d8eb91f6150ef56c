package frontend

import (
	"net/http"

	"github.com/examhall/examhall/store"
)

// mountCluster shows admins the cluster: its live nodes with their load
// and rooms, and the recording segments each node still holds on its disk
// for object storage (a store that is down).
func (s *Server) mountCluster() {
	s.mux.Handle("GET /api/admin/cluster", s.api([]store.Role{store.RoleAdmin}, s.handleCluster))
}

func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request, a *Auth) error {
	nodes, err := s.node.Nodes(r.Context())
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []store.NodeInfo{}
	}
	backlog, err := s.media.Backlog(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"node": s.node.ID(), "nodes": nodes,
		"object_storage": s.cfg.Blobs != nil, "backlog": backlog})
}
