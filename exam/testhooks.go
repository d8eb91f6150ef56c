package exam

import "context"

// AnswerUnderLease stores an answer as a node does that took it under the
// given fencing number of the attempt's room and committed it later (paused
// between the two): the writer alone decides whether it may still write.
// It exists for the whole-system test of fencing (cmd/examhall/e2e); a node
// never calls it.
func (e *Engine) AnswerUnderLease(ctx context.Context, candidateID, attemptID, fence, seq, question int64, value []int) error {
	h, err := e.Open(ctx, candidateID, attemptID)
	if err != nil {
		return err
	}
	o := &op{attemptID: h.l.id, at: e.now(), kind: EvAnswer, clientSeq: seq, requireOpen: true, question: question,
		value: mustJSON(value), data: mustJSON(answerData{question, value}), room: h.l.room, fence: fence}
	return e.w.do(ctx, o)
}
