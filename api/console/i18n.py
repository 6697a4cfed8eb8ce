"""Every string the console shows, in Chinese first and English (one catalogue).

The language is ``zh`` unless the reader chose ``en``: ``?lang=en`` (or ``?lang=zh``) on
any page switches it and a cookie remembers the choice. Names of event types, trade types
and payload fields come from the event catalogue (``name_zh``/``name_en``, ``zh``/``en``),
not from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

#: key -> (Chinese, English). Placeholders use str.format names.
MESSAGES: Mapping[str, tuple[str, str]] = {
    "app.name": ("见证 · 审计账本", "Jianzheng audit ledger"),
    "app.console": ("监督与档案控制台", "Review and archive console"),
    "nav.skip": ("跳到正文", "Skip to content"),
    "nav.projects": ("项目", "Projects"),
    "nav.log": ("日志状态", "Log status"),
    "nav.signed_in_as": ("当前令牌：{token}（{role}）", "Signed in: {token} ({role})"),
    "nav.sign_out": ("退出", "Sign out"),
    "nav.lang_switch": ("English", "中文"),
    "nav.lang_label": ("切换语言", "Switch language"),
    "nav.main": ("主导航", "Main navigation"),
    "nav.pages": ("翻页", "Pages"),
    "role.reviewer": ("监督审查", "reviewer"),
    "role.archivist": ("档案管理", "archivist"),
    "role.admin": ("管理员", "admin"),
    "role.platform": ("交易平台", "platform"),
    "signin.title": ("登录", "Sign in"),
    "signin.intro": (
        "输入管理员发给您的访问令牌（以 jz_ 开头）。"
        "令牌的角色和范围决定您能看到的项目，与 API 完全一致。",
        "Enter the access token your administrator gave you (it starts with jz_). Its role "
        "and scope decide which projects you see, exactly as in the API.",
    ),
    "signin.token": ("访问令牌", "Access token"),
    "signin.submit": ("登录", "Sign in"),
    "signin.failed": ("令牌无效、已过期或已吊销。", "Unknown, expired or revoked token."),
    "signin.signed_out": ("您已退出。", "You are signed out."),
    "signin.expired": ("会话已结束，请重新登录。", "Your session has ended; sign in again."),
    "csrf.refused": (
        "表单校验失败（缺少或不匹配的 CSRF 令牌），请求已拒绝。请刷新页面后重试。",
        "The form check failed (missing or mismatched CSRF token); the request was "
        "refused. Reload the page and try again.",
    ),
    "error.title": ("出错了", "Something went wrong"),
    "error.404": ("未找到（或不在您的令牌范围内）。", "Not found (or outside your token's scope)."),
    "error.403": ("您的令牌角色不能查看此页面。", "Your token's role may not see this page."),
    "error.429": ("请求过于频繁，请稍后再试。", "Too many requests; try again shortly."),
    "error.422": ("参数无效：{message}", "Invalid parameter: {message}"),
    "error.503": ("服务暂时不可用：{message}", "Service unavailable: {message}"),
    "error.limit": ("已达上限：{message}", "Limit reached: {message}"),
    "error.other": ("错误 {status}：{message}", "Error {status}: {message}"),
    "error.back": ("返回项目列表", "Back to the projects"),
    "projects.title": ("项目", "Projects"),
    "projects.search": ("检索项目", "Search projects"),
    "projects.code": ("项目编号（前缀）", "Project code (prefix)"),
    "projects.trade_type": ("交易类型", "Trade type"),
    "projects.any": ("全部", "Any"),
    "projects.from": ("进场日期自", "Registered from"),
    "projects.to": ("进场日期至", "Registered until"),
    "projects.status": ("当前阶段", "Current phase"),
    "projects.submit": ("检索", "Search"),
    "projects.none": ("没有符合条件的项目。", "No project matches."),
    "projects.col.code": ("项目编号", "Project"),
    "projects.col.trade_type": ("交易类型", "Trade type"),
    "projects.col.registered": ("进场日期", "Registered"),
    "projects.col.latest": ("最新事件", "Latest event"),
    "projects.col.phase": ("阶段", "Phase"),
    "projects.col.events": ("事件数", "Events"),
    "projects.next": ("下一页", "Next page"),
    "projects.first": ("第一页", "First page"),
    "projects.scanned": (
        "已检查 {n} 个项目仍未凑满一页，请缩小检索条件或翻到下一页。",
        "{n} projects scanned without filling a page; narrow the search or go on.",
    ),
    "projects.timeline": ("时间线", "Timeline"),
    "projects.access": ("调阅记录", "Access log"),
    "phase.setup": ("进场", "Setup"),
    "phase.notice": ("公告", "Notice"),
    "phase.dispute": ("异议", "Dispute"),
    "phase.bidding": ("投标", "Bidding"),
    "phase.opening": ("开标", "Opening"),
    "phase.evaluation": ("评标", "Evaluation"),
    "phase.award": ("定标", "Award"),
    "phase.contract": ("合同", "Contract"),
    "phase.complaint": ("投诉", "Complaint"),
    "phase.land_mining_property": ("出让转让", "Transfer"),
    "phase.archive": ("归档", "Archive"),
    "phase.access": ("调阅", "Access"),
    "timeline.title": ("项目 {project} 时间线", "Timeline of project {project}"),
    "timeline.trade_type": ("交易类型：{name}", "Trade type: {name}"),
    "timeline.sealed_banner": (
        "本项目有密封事件（投标、保证金等）：密封至开标。开标前，任何人（包括管理员）都看不到投标人、报价和投标数量。",
        "This project has sealed events (bids, deposits, ...): sealed until the opening. "
        "Before it nobody, admin included, sees who bid, what they offered or how many bid.",
    ),
    "timeline.sealed_role": (
        "开标后，密封内容只对监督审查和档案管理角色开放。",
        "After the opening only the reviewer and archivist roles read the sealed parts.",
    ),
    "timeline.facts": ("要点", "Key facts"),
    "timeline.events": ("事件", "Events"),
    "timeline.none": ("本项目没有可显示的事件。", "This project has no event to show."),
    "timeline.col.seq": ("序号", "Seq"),
    "timeline.col.when": ("发生时间（北京时间）", "Occurred (Beijing time)"),
    "timeline.col.event": ("事件", "Event"),
    "timeline.col.facts": ("内容", "Details"),
    "timeline.col.index": ("日志位置", "Log index"),
    "timeline.recorded": ("记入账本：{when}", "Recorded: {when}"),
    "timeline.actor": ("主体", "Actor"),
    "timeline.attachments": ("附件", "Attachments"),
    "timeline.att.name": ("文件名", "File name"),
    "timeline.att.type": ("媒体类型", "Media type"),
    "timeline.att.size": ("大小", "Size"),
    "timeline.att.hash": ("SHA-256", "SHA-256"),
    "timeline.next": ("下一页", "Next page"),
    "timeline.print": ("打印", "Print"),
    "timeline.sealed_record": ("密封事件", "Sealed event"),
    "facts.opening": ("开标", "Opening"),
    "facts.place": ("地点", "Place"),
    "facts.deadlines": ("截止时间", "Deadlines"),
    "facts.bidders": ("投标人及报价", "Bidders and prices"),
    "facts.winner": ("中标（成交）人", "Winner"),
    "facts.none": ("暂无", "None yet"),
    "sealed": ("密封至开标", "sealed until the opening"),
    "confidential": ("保密", "confidential"),
    "evidence.title": ("证据文件 {name}", "Evidence file {name}"),
    "evidence.facts": ("文件信息", "About the file"),
    "evidence.name": ("文件名（引用记录所给）", "File name (as the citing record gives it)"),
    "evidence.project": ("经由项目", "Read through project"),
    "evidence.chunks": ("分块数（1 MiB）", "Chunks (1 MiB)"),
    "evidence.chunk_root": ("分块根", "Chunk root"),
    "evidence.retain_until": ("锁定至（不可删改）", "Locked until (no deletion or change)"),
    "evidence.hold": ("法律保全", "Legal hold"),
    "evidence.hold_on": ("已保全", "held"),
    "evidence.hold_off": ("未保全", "not held"),
    "evidence.play": ("播放", "Play"),
    "evidence.play_note": (
        "在本页播放和拖动进度只记录一次查阅（一个读取会话）。",
        "Playing and seeking in this page is recorded as one read (one read session).",
    ),
    "evidence.download": ("下载（保留原文件名）", "Download (keeps the original name)"),
    "evidence.check": ("核对一个分块", "Check one chunk"),
    "evidence.check_intro": (
        "在浏览器中用 WebCrypto SHA-256 计算该分块的叶哈希，并按包含证明推算分块根，"
        "与下方的分块根比对（可换成您从证据包或收据中得到的分块根）。",
        "Hashes the chunk in this browser (WebCrypto SHA-256) and follows its inclusion "
        "proof to a chunk root, compared with the one below (replace it with the one from "
        "your bundle or receipt).",
    ),
    "evidence.check_index": ("分块序号", "Chunk index"),
    "evidence.check_root": ("期望的分块根（base64）", "Expected chunk root (base64)"),
    "evidence.check_run": ("核对", "Check"),
    "evidence.check_ok": (
        "分块 {index} 属于该文件：证明通向分块根。",
        "Chunk {index} is part of the file: its proof leads to the chunk root.",
    ),
    "evidence.check_failed": ("核对失败：", "Check failed: "),
    "evidence.hold_title": ("设置或解除法律保全", "Place or lift a legal hold"),
    "evidence.hold_reason": (
        "理由（如投诉编号），必填",
        "Reason (e.g. the complaint's reference), required",
    ),
    "evidence.hold_set": ("保全", "Place hold"),
    "evidence.hold_release": ("解除保全", "Lift hold"),
    "evidence.hold_done": ("已记录为账本事件。", "Recorded as a ledger event."),
    "event.title": ("日志位置 {index} 的事件", "Event at log index {index}"),
    "event.record": ("记录", "Record"),
    "event.receipt": ("收据", "Receipt"),
    "event.hash": ("事件哈希", "Event hash"),
    "event.project": ("所属项目", "Project"),
    "event.opened": ("开标后打开的记录", "The record as opened after the opening"),
    "event.redacted": (
        "此记录部分内容已密封，无法在浏览器中核对其哈希。",
        "Parts of this record are sealed; its hash cannot be checked here.",
    ),
    "verify.title": ("在本浏览器中验证", "Verify in this browser"),
    "verify.intro": (
        "在您的浏览器中（WebCrypto SHA-256 与 Ed25519）核对：记录的事件哈希、默克尔包含证明、"
        "日志对检查点的签名。所用的日志公钥由您自己固定，核对结果不依赖服务器。",
        "Checks, in your browser (WebCrypto SHA-256 and Ed25519), the record's event hash, "
        "the Merkle inclusion proof and the log's signature on the checkpoint, against a "
        "log key you pin yourself: the result does not rest on the server.",
    ),
    "verify.key": ("固定的日志公钥（verifier key）", "Pinned log key (verifier key)"),
    "verify.key_hint": (
        "从可信渠道获得（例如交易中心公告），保存在本浏览器中。服务器报告的公钥为：",
        "Get it from a trusted channel (e.g. the centre's notice); it is kept in this "
        "browser. The server reports:",
    ),
    "verify.pin": ("固定此公钥", "Pin this key"),
    "verify.record_json": ("记录（JSON）", "Record (JSON)"),
    "verify.receipt_json": ("收据（JSON，可粘贴其他收据）", "Receipt (JSON; paste another)"),
    "verify.run": ("验证", "Verify"),
    "verify.ok": ("验证通过", "Verified"),
    "verify.failed": ("验证失败", "Verification failed"),
    "verify.step.hash": ("事件哈希", "Event hash"),
    "verify.step.signature": ("日志签名", "Log signature"),
    "verify.step.inclusion": ("包含证明", "Inclusion proof"),
    "verify.no_key": ("请先固定日志公钥。", "Pin a log key first."),
    "verify.err.bad_key": (
        "公钥格式不对，应为“名称+密钥ID+公钥”",
        "the key must read name+keyid+key",
    ),
    "verify.err.not_ed25519": ("不是 Ed25519 日志公钥", "not an Ed25519 verifier key"),
    "verify.err.key_id": ("密钥 ID 与公钥不符", "the key ID does not match the key"),
    "verify.err.bad_json": ("记录或收据不是有效的 JSON", "the record or receipt is not valid JSON"),
    "verify.err.bad_base64": ("哈希或签名不是有效的 base64", "a hash or signature is not base64"),
    "verify.err.unsafe_number": (
        "记录中的数字超出浏览器可精确表示的范围",
        "a number in the record is beyond what the browser holds exactly",
    ),
    "verify.err.hash_mismatch": (
        "记录的哈希与收据的 event_hash 不一致",
        "the record does not hash to the receipt's event_hash",
    ),
    "verify.err.index_mismatch": (
        "记录的日志位置与收据不一致",
        "the record's index is not the receipt's",
    ),
    "verify.err.malformed_checkpoint": ("检查点格式不对", "the checkpoint is malformed"),
    "verify.err.no_signature": (
        "检查点上没有所固定公钥的签名",
        "no signature by the pinned key",
    ),
    "verify.err.bad_signature": ("日志签名无效", "the log's signature does not verify"),
    "verify.err.origin": (
        "检查点的日志名称与公钥名称不符",
        "the checkpoint's origin is not the key's name",
    ),
    "verify.err.proof_shape": (
        "包含证明的长度或位置不对",
        "the inclusion proof has the wrong shape for this index and size",
    ),
    "verify.err.root_mismatch": (
        "由证明推算出的根哈希与检查点不一致",
        "the proof does not lead to the checkpoint's root",
    ),
    "verify.err.no_checkpoint": ("没有验证通过的检查点", "no verified checkpoint"),
    "access.title": ("项目 {project} 调阅记录", "Access log of project {project}"),
    "access.intro": (
        "每一次读取证据（记录、文件、证据包）都作为 evidence_accessed 事件记入账本。",
        "Every read of evidence (records, files, bundles) is recorded in the ledger as an "
        "evidence_accessed event.",
    ),
    "access.none": ("尚无调阅记录。", "Nothing read yet."),
    "access.col.when": ("时间（北京时间）", "When (Beijing time)"),
    "access.col.who": ("令牌", "Token"),
    "access.col.role": ("角色", "Role"),
    "access.col.what": ("读取内容", "What was read"),
    "access.col.index": ("日志位置", "Log index"),
    "log.title": ("日志状态", "Log status"),
    "log.origin": ("日志名称（origin）", "Origin"),
    "log.key": ("日志公钥", "Verifier key"),
    "log.size": ("日志大小", "Log size"),
    "log.root": ("根哈希", "Root hash"),
    "log.checkpoint": ("最新检查点", "Latest checkpoint"),
    "log.checkpoint_at": ("签署时间", "Signed at"),
    "log.witnesses": ("见证者", "Witnesses"),
    "log.quorum": (
        "见证门限：{k} / {n}，已见证大小 {size}",
        "Quorum {k} of {n}; witnessed size {size}",
    ),
    "log.no_witnesses": ("本日志未配置见证者。", "This log runs without witnesses."),
    "log.col.witness": ("见证者", "Witness"),
    "log.col.cosigned": ("已联署大小", "Cosigned size"),
    "log.col.lag": ("落后", "Lag"),
    "log.col.state": ("状态", "State"),
    "log.timestamps": ("时间戳", "Timestamps"),
    "log.ts_latest": (
        "最新带 RFC 3161 时间戳的检查点：大小 {size}，时间 {when}，签发方 {tsa}",
        "Latest RFC 3161 timestamped checkpoint: size {size}, at {when}, by {tsa}",
    ),
    "log.ts_none": ("尚无时间戳。", "No timestamp yet."),
    "log.alarms": ("监测告警", "Monitor alarms"),
    "log.alarms_none": ("没有监测告警。", "No monitor alarm."),
    "log.alarms_off": (
        "本服务未配置监测状态目录（serve --monitor-state）。",
        "No monitor state directory is configured (serve --monitor-state).",
    ),
    "log.alarm_at": ("{kind}：{message}", "{kind}: {message}"),
    "log.monitor_seen": (
        "监测者最近核对到大小 {size}（{when}）。",
        "The monitor last verified size {size} ({when}).",
    ),
    "nav.bundles": ("证据包", "Bundles"),
    "bundles.title": ("证据包", "Evidence bundles"),
    "bundles.export_h": ("导出证据包", "Export a bundle"),
    "bundles.export_intro": (
        "在服务器上生成项目的证据包（与 API 的 GET /v1/projects/P/bundle 完全相同），"
        "生成后在此下载。下载与 API 导出一样记入项目的调阅记录。",
        "The server writes the project's evidence bundle (exactly what the API's "
        "GET /v1/projects/P/bundle gives); download it here when it is done. The "
        "download is recorded in the project's access log, as an API export is.",
    ),
    "bundles.project": ("项目编号", "Project code"),
    "bundles.files": (
        "包含附件文件（录音录像、投标文件等）",
        "Include the attached files (recordings, bid files...)",
    ),
    "bundles.export_submit": ("开始导出", "Start the export"),
    "bundles.export_this": ("导出本项目证据包", "Export this project's bundle"),
    "bundles.jobs_h": ("我的导出任务", "My export jobs"),
    "bundles.jobs_none": ("暂无导出任务。", "No export job."),
    "bundles.jobs_note": (
        "每个令牌最多同时保留 {n} 个任务；完成的任务及其文件保留 {hours} 小时后自动删除。",
        "A token holds at most {n} jobs at once; a finished job and its file are removed "
        "after {hours} hours.",
    ),
    "bundles.col.projects": ("项目", "Projects"),
    "bundles.col.state": ("状态", "State"),
    "bundles.col.created": ("开始时间", "Started"),
    "bundles.col.progress": ("进度", "Progress"),
    "bundles.state.queued": ("排队中", "queued"),
    "bundles.state.running": ("进行中", "running"),
    "bundles.state.done": ("已完成", "done"),
    "bundles.state.failed": ("失败", "failed"),
    "bundles.job_title": ("导出任务 {id}", "Export job {id}"),
    "bundles.progress": ("进度", "Progress"),
    "bundles.progress_text": (
        "项目 {projects_done}/{projects_total} · 记录 {records_done}/{records_total} · "
        "文件 {files_done}/{files_total}（{bytes_done} / {bytes_total}）· 已写入 {zip_bytes}",
        "projects {projects_done}/{projects_total} · records {records_done}/{records_total} · "
        "files {files_done}/{files_total} ({bytes_done} of {bytes_total}) · written {zip_bytes}",
    ),
    "bundles.download": ("下载证据包", "Download the bundle"),
    "bundles.download_note": (
        "每次下载都为所含的每个项目记录一条调阅记录（evidence_accessed）。",
        "Every download is recorded for each project it holds (evidence_accessed).",
    ),
    "bundles.size": ("文件大小", "File size"),
    "bundles.expires": ("保留至（北京时间）", "Kept until (Beijing time)"),
    "bundles.failed": ("导出失败：{message}", "The export failed: {message}"),
    "bundles.delete": ("删除任务", "Delete the job"),
    "bundles.open": ("查看", "Open"),
    "bundles.refresh": ("刷新进度", "Refresh"),
    "bundles.back": ("返回证据包页面", "Back to Bundles"),
    "bundles.verify_h": ("验证证据包", "Verify a bundle"),
    "bundles.verify_intro": (
        "上传证据包（zip）。服务器运行离线验证程序（与 python -m verifier 相同的代码），"
        "在此显示完整性与合规性两个结论及其理由。上传的文件验证后即删除，不予保存。",
        "Upload an evidence bundle (zip). The server runs the offline verifier (the same code "
        "as python -m verifier) and shows both verdicts, integrity and compliance, with their "
        "reasons. The upload is deleted once verified; nothing of it is kept.",
    ),
    "bundles.verify_file": (
        "证据包文件（zip，不超过 {size}）",
        "Bundle file (zip, at most {size})",
    ),
    "bundles.verify_trust": ("信任文件", "Trust file"),
    "bundles.verify_trust_note": (
        "已填入本服务公布的日志与见证人公钥。请与独立渠道（如监督部门公告）取得的公钥核对；"
        "清空则只检查内部一致性。",
        "Filled in with the log and witness keys this service publishes. Compare them with "
        "keys obtained independently (the supervising department's notice, say); left empty, "
        "only internal consistency is checked.",
    ),
    "bundles.verify_submit": ("上传并验证", "Upload and verify"),
    "report.title": ("验证报告", "Verification report"),
    "report.facts": ("证据包", "The bundle"),
    "report.project": ("项目", "Project"),
    "report.records": ("记录数", "Records"),
    "report.checkpoint": ("检查点大小", "Checkpoint size"),
    "report.origin": ("日志", "Log"),
    "report.sha256": ("证据包 SHA-256", "Bundle SHA-256"),
    "report.verified_at": ("验证时间（北京时间）", "Verified at (Beijing time)"),
    "report.trust": ("信任来源", "Trust"),
    "report.trust_file": ("信任文件", "the trust file"),
    "report.trust_bundle": (
        "证据包自带的公钥（仅内部一致性）",
        "keys from the bundle itself (internal consistency only)",
    ),
    "report.exit": ("离线验证程序退出码：{code}", "Offline verifier exit code: {code}"),
    "report.established": ("已核验", "Established"),
    "report.rules_passed": ("通过的规则", "Rules passed"),
    "report.rules_na": ("不适用的规则", "Rules not applicable"),
    "report.indicators_h": ("预警提示", "Indicators"),
    "report.indicators_note": (
        "供人工核查的迹象，不是结论，不改变上述任何结论。",
        "Signs for a person to examine, never a verdict: they change neither verdict.",
    ),
    "report.checks_h": ("未通过或需注意的检查", "Checks that failed or need attention"),
    "report.checks_none": ("没有未通过或需注意的检查。", "No check failed or needs attention."),
    "report.again": ("再验证一个证据包", "Verify another bundle"),
    "status.pass": ("通过", "PASS"),
    "status.fail": ("未通过", "FAIL"),
    "status.warn": ("警示", "WARN"),
    "status.cannot_evaluate": ("无法判断", "CANNOT EVALUATE"),
    "status.not_applicable": ("不适用", "NOT APPLICABLE"),
    "indicators.title": (
        "项目 {project} 串通投标预警",
        "Collusion indicators of project {project}",
    ),
    "indicators.link": ("串通投标预警", "Collusion indicators"),
    "indicators.notice": (
        "预警指标只提示需要人工核查的情形，不是认定串通投标的结论。",
        "An indicator is a warning for a person to examine, never a verdict of collusion.",
    ),
    "indicators.basis": (
        "依据招标投标法实施条例第三十九、四十、四十一条，开标后由账本中已见证的投标记录计算；"
        "离线验证程序从证据包得出相同结果。",
        "After Arts. 39-41 of the Regulation on the Implementation of the Bidding Law, "
        "computed after the opening from the witnessed bid records; the offline verifier "
        "computes the same from the evidence bundle.",
    ),
    "indicators.sealed": (
        "开标前不计算预警指标：投标内容仍密封。",
        "No indicator is computed before the opening: the bids are still sealed.",
    ),
    "indicators.none": ("未发现预警指标。", "No indicator raised."),
    "indicators.read": (
        "读取投标与保证金记录 {n} 条；阈值：变异系数 ≤ {cv}，等差/等比容差 {tol}，至少 {k} 家。",
        "{n} bid and deposit records read; thresholds: coefficient of variation ≤ {cv}, "
        "progression tolerance {tol}, at least {k} bidders.",
    ),
    "indicators.col.id": ("指标", "Indicator"),
    "indicators.col.strength": ("强度", "Strength"),
    "indicators.col.finding": ("说明与依据", "Finding and source"),
    "indicators.col.evidence": ("证据", "Evidence"),
    "strength.strong": ("强", "strong"),
    "strength.medium": ("中", "medium"),
    "strength.weak": ("弱", "weak"),
    "nav.archive": ("档案", "Archive"),
    "archive.title": ("档案管理", "Archivists"),
    "archive.intro": (
        "按进场日期和交易类型列出令牌范围内的项目，以及每个项目的证据文件、锁定期限和法律保全。"
        "勾选项目，可将它们的证据包合为一个导出任务。",
        "Projects in your token's scope by registration date and trade type, with each "
        "project's evidence files, how long each is locked and whether a legal hold is on. "
        "Tick projects to export their bundles as one job.",
    ),
    "archive.search": ("按日期和交易类型检索", "Search by date and trade type"),
    "archive.pick": ("选择项目", "Select project"),
    "archive.files_of": ("项目 {project} 的证据文件", "Evidence files of project {project}"),
    "archive.no_files": ("没有可显示的证据文件。", "No evidence file to show."),
    "archive.all_files": ("全部文件（此处仅列出前 {n} 个）", "All files (only the first {n} here)"),
    "archive.project_title": ("项目 {project} 的证据文件", "Evidence files of project {project}"),
    "archive.files_intro": (
        "锁定至：对象存储不允许在此之前删除或修改该文件"
        "（MinIO 合规模式保留期，或本地存储由服务执行的保留期）。"
        "法律保全在证据文件页面设置或解除，并须说明理由。",
        "Locked until: the object store lets nobody delete or change the file before then "
        "(MinIO COMPLIANCE retention, or the retention the service enforces on its local "
        "store). Legal holds are placed and lifted, with a reason, on each file's page.",
    ),
    "archive.back": ("返回档案管理", "Back to the archive"),
    "archive.export": ("导出所选项目的证据包", "Export the selected projects' bundles"),
    "archive.export_intro": (
        "一个任务导出所有勾选的项目（最多 {max} 个），完成后下载一个 zip，内含每个项目的证据包。",
        "One job exports every ticked project (at most {max}); when done, one zip holds "
        "each project's bundle.",
    ),
    "archive.with_files": ("包含附件文件", "Include the attachments' files"),
    "archive.export_submit": ("开始导出", "Start the export"),
    "archive.pick_all": ("全选本页项目", "Tick every project on this page"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
}


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` in ``lang`` (unknown keys show as themselves, so a missing
    string is visible, never an error page)."""
    pos = 0 if lang != "en" else 1

    def t(key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        if pair is None:
            return key
        text = pair[pos]
        return text.format(**values) if values else text

    return t
