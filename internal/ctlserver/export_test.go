package ctlserver

// Clients returns the number of clients being served in total and in class
// (a client class as in busy messages: "uid 65534", "tcp").
func (s *Server) Clients(class string) (total, inClass int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, s.perClass[class]
}

// Refusing returns the number of clients being told that the server is busy.
func (s *Server) Refusing() int { return len(s.refusing) }
