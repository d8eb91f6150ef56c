package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

//go:embed demodata/bank.json
var demoBank []byte

// demoSeededKey marks a database that holds the demo; its value is the
// session id.
const demoSeededKey = "demo.session_id"

// Login is one account of the demo, as written to demo.json.
type Login struct {
	Username string `json:"username,omitempty"`
	Ticket   string `json:"ticket,omitempty"`
	Password string `json:"password"`
	Room     string `json:"room,omitempty"`
	Name     string `json:"name,omitempty"`
}

// DemoFile is <data-dir>/demo.json: the URL and every login, so scripts (and
// the load generator) can drive the demo.
type DemoFile struct {
	URL       string  `json:"url"`
	SessionID int64   `json:"session_id"`
	Admin     Login   `json:"admin"`
	Reviewers []Login `json:"reviewers"`
	// Panel are reviewers with organisations, for the certificate's panels.
	Panel        []Login `json:"panel"`
	Invigilators []Login `json:"invigilators"`
	// Chief is a chief invigilator: works in the first room, sees every
	// room of the session.
	Chief      Login   `json:"chief,omitempty"`
	Candidates []Login `json:"candidates"`
}

// demoBlueprint draws 100 questions worth 100 points from the bank.
const demoBlueprint = `{"sections":[
 {"title_zh":"单项选择题","title_en":"Single choice","kind":"single","count":60,"points":1},
 {"title_zh":"多项选择题","title_en":"Multiple choice","kind":"multiple","count":20,"points":1.5},
 {"title_zh":"判断题","title_en":"True or false","kind":"truefalse","count":20,"points":0.5}]}`

const mockBlueprint = `{"sections":[
 {"title_zh":"单项选择题","title_en":"Single choice","kind":"single","count":10,"points":5},
 {"title_zh":"多项选择题","title_en":"Multiple choice","kind":"multiple","count":5,"points":6},
 {"title_zh":"判断题","title_en":"True or false","kind":"truefalse","count":5,"points":4}]}`

// seedDemo seeds the demo once; run again on the same data dir it keeps the
// accounts (their passwords are in demo.json) and reopens the session for
// today.
func seedDemo(ctx context.Context, cfg *Config, db *store.DB, log *slog.Logger) (func(string, io.Writer) error, error) {
	path := filepath.Join(cfg.DataDir, "demo.json")
	now := time.Now()
	startsAt := now.Add(-time.Minute).Truncate(time.Minute)
	y, m, d := now.Date()
	endsAt := time.Date(y, m, d+1, 0, 0, 0, 0, now.Location())

	var demo *DemoFile
	if v, err := db.Setting(ctx, demoSeededKey); err == nil {
		id, _ := strconv.ParseInt(v, 10, 64)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("the database already holds the demo, but %s cannot be read (%v); start with an empty --data-dir", path, err)
		}
		demo = &DemoFile{}
		if err := json.Unmarshal(b, demo); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(demo.Candidates) != cfg.Candidates {
			log.Warn("the demo was seeded before with another number of candidates; keeping it (use an empty --data-dir to change it)",
				"seeded", len(demo.Candidates), "asked", cfg.Candidates)
		}
		err = db.WithContext(ctx).Model(&store.ExamSession{}).Where("id = ?", id).
			Updates(map[string]any{"starts_at": startsAt.UTC(), "admission_ends_at": endsAt.UTC(), "ends_at": endsAt.UTC()}).Error
		if err != nil {
			return nil, err
		}
		log.Info("demo already seeded; session reopened for today", "session", id, "candidates", len(demo.Candidates))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	} else {
		start := time.Now()
		if demo, err = seedDemoData(ctx, cfg.Candidates, db, startsAt, endsAt); err != nil {
			return nil, err
		}
		log.Info("demo seeded", "candidates", cfg.Candidates, "rooms", roomCount(demo), "took", time.Since(start).Round(time.Millisecond))
	}
	return func(url string, out io.Writer) error {
		demo.URL = url
		b, _ := json.MarshalIndent(demo, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
		printDemo(out, demo, path)
		return nil
	}, nil
}

// seedDemoData seeds an empty database with the demo: the programme with
// its levels, questions and exams, one session open from startsAt to endsAt
// for n candidates spread over rooms, its staff, and the certificate
// programme's demo data.
func seedDemoData(ctx context.Context, n int, db *store.DB, startsAt, endsAt time.Time) (*DemoFile, error) {
	bank, errs := exam.ParseBankJSON(demoBank)
	if len(errs) > 0 {
		return nil, fmt.Errorf("demo bank: %v", errs)
	}
	rules := exam.DefaultRules
	plan, err := proctor.PlanRooms(n, rules.Invigilation)
	if err != nil {
		return nil, err
	}
	demo := demoLogins(plan, startsAt)
	accounts := demoAccounts(demo)
	if err := hashDemoPasswords(accounts); err != nil {
		return nil, err
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		prog, levels, err := seedDemoProgramme(tx, rules)
		if err != nil {
			return err
		}
		if err := seedDemoQuestions(tx, prog.ID, bank); err != nil {
			return err
		}
		sess, err := seedDemoSession(tx, prog.ID, levels["junior"], rules, startsAt, endsAt)
		if err != nil {
			return err
		}
		demo.SessionID = sess.ID
		idOf, err := seedDemoUsers(tx, accounts)
		if err != nil {
			return err
		}
		seats, err := seedDemoRooms(tx, sess.ID, len(plan), demo, idOf)
		if err != nil {
			return err
		}
		if _, err := exam.ScheduleSession(ctx, tx, sess.ID, nil); err != nil {
			return err
		}
		if err := seedCertificates(ctx, tx, prog, levels, demo, idOf, seats, startsAt); err != nil {
			return err
		}
		return tx.Create(&store.Setting{Key: demoSeededKey, Value: strconv.FormatInt(sess.ID, 10)}).Error
	})
	if err != nil {
		return nil, err
	}
	return demo, nil
}

// demoLogins makes the demo's logins with fresh passwords: an admin, a
// reviewer, a chief invigilator in the first room, a panel of three, and
// each room's invigilators and candidates as plan sizes them.
func demoLogins(plan []proctor.RoomPlan, startsAt time.Time) *DemoFile {
	demo := &DemoFile{
		Admin:     Login{Username: "admin", Password: accounts.NewStaffPassword()},
		Reviewers: []Login{{Username: "reviewer01", Password: accounts.NewStaffPassword()}},
		Chief:     Login{Username: "chief01", Password: accounts.NewStaffPassword(), Room: "R01"},
	}
	for i := range 3 {
		demo.Panel = append(demo.Panel, Login{Username: fmt.Sprintf("panel%02d", i+1), Password: accounts.NewStaffPassword()})
	}
	ticketPrefix := startsAt.Format("060102")
	seq, invSeq := 0, 0
	for r, room := range plan {
		code := fmt.Sprintf("R%02d", r+1)
		for range room.Invigilators {
			invSeq++
			demo.Invigilators = append(demo.Invigilators, Login{Username: fmt.Sprintf("inv%02d", invSeq), Password: accounts.NewStaffPassword(), Room: code})
		}
		for range room.Candidates {
			seq++
			demo.Candidates = append(demo.Candidates, Login{Ticket: fmt.Sprintf("%s%05d", ticketPrefix, seq), Password: accounts.NewCandidatePassword(), Room: code, Name: chineseName(seq)})
		}
	}
	return demo
}

// demoAccount is the user to create for one demo login.
type demoAccount struct {
	user  store.User
	login *Login
}

// demoAccounts makes a user for every login of demo: staff first, then the
// candidates, whose username is their ticket.
func demoAccounts(demo *DemoFile) []*demoAccount {
	var accounts []*demoAccount
	add := func(role store.Role, name string, l *Login) {
		username := l.Username
		if role == store.RoleCandidate {
			username = l.Ticket
		}
		accounts = append(accounts, &demoAccount{store.User{Role: role, Username: username, DisplayName: name}, l})
	}
	add(store.RoleAdmin, "考试中心管理员", &demo.Admin)
	add(store.RoleReviewer, "评审员 01", &demo.Reviewers[0])
	add(store.RoleInvigilator, "主监考 01", &demo.Chief)
	accounts[len(accounts)-1].user.Chief = true
	for i := range demo.Panel {
		add(store.RolePanel, fmt.Sprintf("评审专家 %02d", i+1), &demo.Panel[i])
	}
	for i := range demo.Invigilators {
		add(store.RoleInvigilator, fmt.Sprintf("监考员 %02d", i+1), &demo.Invigilators[i])
	}
	for i := range demo.Candidates {
		add(store.RoleCandidate, demo.Candidates[i].Name, &demo.Candidates[i])
		// Notifications go to a mailbox that never leaves the machine
		// (without --smtp-url, the data dir's mail/).
		accounts[len(accounts)-1].user.Email = demo.Candidates[i].Ticket + "@candidates.example"
	}
	return accounts
}

// hashDemoPasswords sets each account's password hash. Hashing is the slow
// part of seeding thousands, so it is spread over the cores.
func hashDemoPasswords(list []*demoAccount) error {
	var wg sync.WaitGroup
	jobs := make(chan *demoAccount)
	var hashErr error
	var mu sync.Mutex
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for a := range jobs {
				h, err := accounts.HashPassword(a.login.Password, a.user.Role, accounts.Generated)
				if err != nil {
					mu.Lock()
					hashErr = err
					mu.Unlock()
				}
				a.user.PasswordHash = h
			}
		})
	}
	for _, a := range list {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	return hashErr
}

// seedDemoProgramme creates the demo's programme with rules and its
// levels, and returns the levels' ids by code.
func seedDemoProgramme(tx *gorm.DB, rules exam.Rules) (*store.Programme, map[string]int64, error) {
	rulesJSON, _ := json.Marshal(rules)
	prog := &store.Programme{Code: "KFZX", NameZh: "客服联络咨询师职业技术证书", NameEn: "Customer Contact Consultant vocational technical certificate",
		Issuer: "工业和信息化部教育与考试中心", Rules: string(rulesJSON)}
	if err := tx.Create(prog).Error; err != nil {
		return nil, nil, err
	}
	levels := map[string]int64{}
	for _, l := range exam.DefaultLevels {
		comps, _ := json.Marshal(l.Components)
		lv := &store.Level{ProgrammeID: prog.ID, Code: l.Code, Rank: l.Rank, NameZh: l.NameZh, NameEn: l.NameEn,
			TrainingHours: l.TrainingHours, FeeCents: l.FeeCents, Components: string(comps)}
		if err := tx.Create(lv).Error; err != nil {
			return nil, nil, err
		}
		levels[l.Code] = lv.ID
	}
	return prog, levels, nil
}

// seedDemoQuestions puts the bank in the programme's formal and practice
// pools.
func seedDemoQuestions(tx *gorm.DB, programmeID int64, bank []exam.Question) error {
	// The last questions of each kind are the practice pool, as many
	// as the mock test draws; the formal exam never shows them, and the
	// mock never shows a formal one.
	practice := map[exam.Kind]int{exam.Single: 10, exam.Multiple: 5, exam.TrueFalse: 5}
	qs := make([]store.Question, len(bank))
	for i := len(bank) - 1; i >= 0; i-- {
		q := bank[i]
		opts, _ := json.Marshal(q.Options)
		ans, _ := json.Marshal(q.Answer)
		tags, _ := json.Marshal(q.Tags)
		pool := exam.PoolFormal
		if practice[q.Kind] > 0 {
			practice[q.Kind]--
			pool = exam.PoolPractice
		}
		qs[i] = store.Question{ProgrammeID: programmeID, Kind: string(q.Kind), Stem: q.Stem, Options: string(opts), Answer: string(ans),
			Tags: string(tags), Difficulty: q.Difficulty, PartialCredit: q.PartialCredit, Explanation: q.Explanation, Pool: pool}
	}
	return tx.CreateInBatches(qs, 200).Error
}

// seedDemoSession creates the junior level's theory exam and mock test, and
// the theory exam's session from startsAt to endsAt, open to every
// candidate.
func seedDemoSession(tx *gorm.DB, programmeID, junior int64, rules exam.Rules, startsAt, endsAt time.Time) (*store.ExamSession, error) {
	formal := &store.Exam{ProgrammeID: programmeID, LevelID: &junior, Code: "KFZX-J-THEORY", Kind: "formal",
		TitleZh: "客服联络咨询师（初级）理论考试", TitleEn: "Customer Contact Consultant (Junior) theory exam",
		DurationMinutes: rules.TheoryMinutes, PassMark: rules.PassMark, Blueprint: demoBlueprint}
	mock := &store.Exam{ProgrammeID: programmeID, LevelID: &junior, Code: "KFZX-J-MOCK", Kind: "mock",
		TitleZh: "客服联络咨询师理论考试 · 模拟测试", TitleEn: "Customer Contact Consultant theory exam · mock test",
		DurationMinutes: 30, PassMark: rules.PassMark, Blueprint: mockBlueprint}
	for _, e := range []*store.Exam{formal, mock} {
		if err := tx.Create(e).Error; err != nil {
			return nil, err
		}
	}
	sess := &store.ExamSession{ExamID: formal.ID, Code: "KFZX-J-" + startsAt.Format("20060102"),
		Title:    "客服联络咨询师（初级）理论考试 " + startsAt.Format("2006-01-02"),
		StartsAt: startsAt.UTC(), AdmissionEndsAt: endsAt.UTC(), EndsAt: endsAt.UTC(), AdmissionMode: exam.AdmitOpen}
	if err := tx.Create(sess).Error; err != nil {
		return nil, err
	}
	return sess, nil
}

// seedDemoUsers creates the accounts' users and returns their ids by
// username.
func seedDemoUsers(tx *gorm.DB, accounts []*demoAccount) (map[string]int64, error) {
	users := make([]store.User, len(accounts))
	for i, a := range accounts {
		users[i] = a.user
	}
	if err := tx.CreateInBatches(users, 500).Error; err != nil {
		return nil, err
	}
	idOf := map[string]int64{}
	for _, u := range users {
		idOf[u.Username] = u.ID
	}
	return idOf, nil
}

// seedDemoRooms creates the session's rooms, puts the invigilators (and the
// chief) in them, and seats each room's candidates in turn with its
// invigilators. It returns the seats.
func seedDemoRooms(tx *gorm.DB, sessionID int64, nRooms int, demo *DemoFile, idOf map[string]int64) ([]store.Seat, error) {
	rooms := map[string]*store.Room{}
	invsOf := map[string][]int64{}
	for r := range nRooms {
		code := fmt.Sprintf("R%02d", r+1)
		room := &store.Room{SessionID: sessionID, Code: code, Name: fmt.Sprintf("第 %02d 考场", r+1)}
		if err := tx.Create(room).Error; err != nil {
			return nil, err
		}
		rooms[code] = room
	}
	var ris []store.RoomInvigilator
	for _, l := range demo.Invigilators {
		ris = append(ris, store.RoomInvigilator{RoomID: rooms[l.Room].ID, UserID: idOf[l.Username]})
		invsOf[l.Room] = append(invsOf[l.Room], idOf[l.Username])
	}
	// The chief works in the first room without candidates of their
	// own, and sees every room of the session.
	ris = append(ris, store.RoomInvigilator{RoomID: rooms[demo.Chief.Room].ID, UserID: idOf[demo.Chief.Username]})
	if err := tx.CreateInBatches(ris, 500).Error; err != nil {
		return nil, err
	}
	var seats []store.Seat
	inRoom := map[string]int{}
	for _, l := range demo.Candidates {
		inRoom[l.Room]++
		invs := invsOf[l.Room]
		inv := invs[(inRoom[l.Room]-1)%len(invs)]
		seats = append(seats, store.Seat{SessionID: sessionID, RoomID: rooms[l.Room].ID, CandidateID: idOf[l.Ticket],
			InvigilatorID: &inv, Ticket: l.Ticket, SeatNo: inRoom[l.Room]})
	}
	if err := tx.CreateInBatches(seats, 500).Error; err != nil {
		return nil, err
	}
	return seats, nil
}

func roomCount(d *DemoFile) int {
	rooms := map[string]bool{}
	for _, c := range d.Candidates {
		rooms[c.Room] = true
	}
	return len(rooms)
}

func printDemo(w io.Writer, d *DemoFile, path string) {
	fmt.Fprintf(w, "\nexamhall demo is running at %s\n", d.URL)
	fmt.Fprintf(w, "考试平台已启动，请用浏览器打开上面的地址 / open the address above in Chrome or Firefox\n\n")
	fmt.Fprintf(w, "  管理员 admin        %-12s %s\n", d.Admin.Username, d.Admin.Password)
	for _, r := range d.Reviewers {
		fmt.Fprintf(w, "  评审员 reviewer     %-12s %s\n", r.Username, r.Password)
	}
	for _, p := range d.Panel {
		fmt.Fprintf(w, "  评审专家 panel      %-12s %s\n", p.Username, p.Password)
	}
	if d.Chief.Username != "" {
		fmt.Fprintf(w, "  主监考 chief        %-12s %s  (%s, every room)\n", d.Chief.Username, d.Chief.Password, d.Chief.Room)
	}
	for _, i := range d.Invigilators {
		fmt.Fprintf(w, "  监考员 invigilator  %-12s %s  (%s)\n", i.Username, i.Password, i.Room)
	}
	for i, c := range d.Candidates {
		if i == 5 {
			fmt.Fprintf(w, "  … %d more candidates\n", len(d.Candidates)-5)
			break
		}
		fmt.Fprintf(w, "  考生 candidate      %-12s %s  (%s %s)\n", c.Ticket, c.Password, c.Room, c.Name)
	}
	fmt.Fprintf(w, "\nAll logins: %s\n", path)
	fmt.Fprintf(w, "邮件通知写入 / mails are written to %s (no --smtp-url)\nStop with Ctrl+C.\n", filepath.Join(filepath.Dir(path), "mail"))
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	given    = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平",
		"刚", "桂英", "文", "辉", "玲", "华", "建国", "晓燕", "欣怡", "子轩", "梓涵", "浩然", "雨桐", "宇航", "佳怡", "俊杰", "思远", "婷婷", "志强", "海燕"}
)

// chineseName gives the i-th demo candidate a plausible, deterministic name.
func chineseName(i int) string {
	return string(surnames[(i*7)%len(surnames)]) + given[(i*13)%len(given)]
}
