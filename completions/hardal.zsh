#compdef hardal

autoload -U is-at-least

_hardal() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_hardal_commands" \
"*::: :->hardal" \
&& ret=0
    case $state in
    (hardal)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-command-$line[1]:"
        case $line[1] in
            (validate)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(render)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'--destination=[Render for this destination only]:ID:_default' \
'--now=[Render as of this time (RFC 3339 or epoch seconds) instead of now\: destinations judge their retention against it, e.g. to preview old example events as they were sent]:TIME:_default' \
'--max-event-bytes=[The largest event in bytes; a longer one is reported and skipped unread]:BYTES:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
'::events -- Events\: NDJSON, or a JSON event or array of events. Standard input when absent or `-`:_files' \
&& ret=0
;;
(send)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'--destination=[Send to this destination only]:ID:_default' \
'--state=[The checkpoint store that makes runs resumable (SQLite)]:FILE:_files' \
'--dead-letters=[Where events that were not delivered are written, with their reasons (NDJSON)]:FILE:_files' \
'--progress-interval=[Seconds between progress lines when stderr is not a terminal (0\: none)]:SECONDS:_default' \
'--drain-timeout=[Seconds in-flight requests may take to finish after Ctrl-C]:SECONDS:_default' \
'--workers=[Threads that parse and map events (default\: one per core)]:N:_default' \
'--max-event-bytes=[The largest event (input line) in bytes; a longer line is dead-lettered with its line number and skipped unread]:BYTES:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'--dry-run[Map and batch every event, but send nothing and write nothing]' \
'--json[Print the final summary as JSON on stdout]' \
'--restart[Forget what earlier runs did with this input (for every destination) and start from the first event]' \
'-h[Print help]' \
'--help[Print help]' \
'::events -- Events as NDJSON, one per line. Standard input when absent or `-`:_files' \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON), with \`server\` and optionally \`backlog\`]:FILE:_files' \
'--drain-timeout=[Seconds in-flight requests may take to finish after SIGTERM or Ctrl-C]:SECONDS:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'(--no-deliver)--no-ingest[Only deliver\: \`POST /v1/events\` answers 503 and \`/readyz\` is never ready (a worker on a shared NATS backlog)]' \
'--no-deliver[Only accept events into the backlog; other nodes deliver them (NATS backlog)]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(dlq)
_arguments "${_arguments_options[@]}" : \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
":: :_hardal__subcmd__dlq_commands" \
"*::: :->dlq" \
&& ret=0

    case $state in
    (dlq)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-dlq-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON) whose backlog holds the dead letters]:FILE:_files' \
'--destination=[Only this destination'\''s]:ID:_default' \
'--reason=[Only those with a reason containing this text]:TEXT:_default' \
'--since=[Only those dead-lettered since this time (RFC 3339, or a span ago\: 30m, 2h, 7d)]:TIME:_default' \
'--until=[Only those dead-lettered until this time (RFC 3339, or a span ago)]:TIME:_default' \
'--limit=[At most this many]:N:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'--json[Print them as a JSON array on stdout, with the events]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The dead letter'\''s id (from `list`):_default' \
&& ret=0
;;
(replay)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON) whose backlog holds the dead letters]:FILE:_files' \
'--destination=[Only this destination'\''s]:ID:_default' \
'--reason=[Only those with a reason containing this text]:TEXT:_default' \
'--since=[Only those dead-lettered since this time (RFC 3339, or a span ago\: 30m, 2h, 7d)]:TIME:_default' \
'--until=[Only those dead-lettered until this time (RFC 3339, or a span ago)]:TIME:_default' \
'--id=[Only this one]:ID:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(purge)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON) whose backlog holds the dead letters]:FILE:_files' \
'--destination=[Only this destination'\''s]:ID:_default' \
'--reason=[Only those with a reason containing this text]:TEXT:_default' \
'--since=[Only those dead-lettered since this time (RFC 3339, or a span ago\: 30m, 2h, 7d)]:TIME:_default' \
'--until=[Only those dead-lettered until this time (RFC 3339, or a span ago)]:TIME:_default' \
'--id=[Only this one]:ID:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_hardal__subcmd__dlq__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-dlq-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(replay)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(purge)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(forget)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'*--user-id=[The user'\''s \`user_id\` (repeatable, as every identifier)]:ID:_default' \
'*--email=[The user'\''s e-mail address]:E:_default' \
'*--phone=[The user'\''s phone number]:P:_default' \
'*--custom=[A custom identifier\: an event path and its value, e.g. \`properties.customer_no=42\`]:K=V:_default' \
'*--dead-letters=[A dead-letter file of \`hardal send\` (a backfill) to rewrite without the user'\''s letters (repeatable; not while that \`hardal send\` runs). The backfill'\''s input is yours\: take the user'\''s lines out of it before sending it again]:FILE:_files' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'--wait[When a running service carries the job out, wait until it is complete]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(privacy)
_arguments "${_arguments_options[@]}" : \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
":: :_hardal__subcmd__privacy_commands" \
"*::: :->privacy" \
&& ret=0

    case $state in
    (privacy)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-privacy-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--config=[The configuration file (JSON)]:FILE:_files' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
':id -- The job'\''s id (from `forget` or `list`):_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_hardal__subcmd__privacy__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-privacy-help-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(tap)
_arguments "${_arguments_options[@]}" : \
'--url=[The service'\''s tap listener (\`server.tap.listen\`)]:URL:_default' \
'*--destination=[Only this destination'\''s records and verdicts (repeatable)]:ID:_default' \
'*--event-name=[Only events with this \`event_name\` (repeatable)]:NAME:_default' \
'*--user=[Only this user'\''s events\: \`user_id\`, else \`user.email\` (repeatable)]:USER:_default' \
'--sample=[Only this share of events, e.g. 0.1 (each event shown whole or not at all)]:RATE:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'--json[Print the service'\''s NDJSON lines as they come, rather than readable lines]' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(presets)
_arguments "${_arguments_options[@]}" : \
'--kind=[The destination kind, e.g. \`insider\`]:KIND:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
'::name -- The preset to print; without it, the names are listed:_default' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'--config=[]:FILE:_files' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(schema)
_arguments "${_arguments_options[@]}" : \
'--config=[]:FILE:_files' \
'--kind=[Print the schema of this destination kind only]:KIND:_default' \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help]' \
'--help[Print help]' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':shell -- The shell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
'--log-format=[How log lines are written\: \`text\` for people, \`json\` for log collectors]:LOG_FORMAT:(text json)' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
':dir -- The directory (it must exist):_files' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_hardal__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-help-command-$line[1]:"
        case $line[1] in
            (validate)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(render)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(send)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(dlq)
_arguments "${_arguments_options[@]}" : \
":: :_hardal__subcmd__help__subcmd__dlq_commands" \
"*::: :->dlq" \
&& ret=0

    case $state in
    (dlq)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-help-dlq-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(replay)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(purge)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(forget)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(privacy)
_arguments "${_arguments_options[@]}" : \
":: :_hardal__subcmd__help__subcmd__privacy_commands" \
"*::: :->privacy" \
&& ret=0

    case $state in
    (privacy)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hardal-help-privacy-command-$line[1]:"
        case $line[1] in
            (list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(tap)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(presets)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(schema)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_hardal_commands] )) ||
_hardal_commands() {
    local commands; commands=(
'validate:Check a configuration\: schema, environment variables, templates. Exit 0 when valid' \
'render:Print the request body each destination would send for each event, one per line. Nothing is sent' \
'send:Deliver a file of events (a backfill) to every destination, with progress and a summary. Running the same command again after an interruption continues where it stopped' \
'serve:Run the service\: take events over HTTP (\`POST /v1/events\`), keep them in the backlog, and deliver them to every destination; \`/healthz\`, \`/readyz\` and \`/metrics\` for operators' \
'dlq:The dead letters of \`hardal serve\`'\''s backlog\: list, show, replay or purge them (also while the service runs)' \
'forget:Erase a user\: suppress their events from now on, remove those waiting in the backlog and its dead letters, and ask each destination to delete them. Through the running \`hardal serve\` that owns the spool (with the first of \`server.privacy_tokens\`), else here. Prints the job'\''s audit record (JSON)' \
'privacy:The audit records of erasures\: when, which destinations confirmed, which failed and why; a digest of the identifiers, never the identifiers. JSON lines' \
'tap:Watch a running \`hardal serve\`\: each event as received, each destination'\''s record, and each verdict, as they happen. The token is read from HARDAL_TAP_TOKEN (one of the configuration'\''s \`server.tap.auth_tokens\`)' \
'presets:Print the built-in mappings (presets) of a destination kind' \
'list:List the destination kinds this binary knows' \
'schema:Print the JSON Schema of the configuration file, or of one destination kind' \
'completions:Print the completion script of a shell' \
'man:Write the man pages into a directory' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hardal commands' commands "$@"
}
(( $+functions[_hardal__subcmd__completions_commands] )) ||
_hardal__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'hardal completions commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq_commands] )) ||
_hardal__subcmd__dlq_commands() {
    local commands; commands=(
'list:List dead letters, one line each (id, destination, time, ending, first reason)' \
'show:Print one dead letter (its event and every reason) as JSON' \
'replay:Put dead letters back in line for their destination' \
'purge:Delete dead letters for good' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hardal dlq commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__help_commands] )) ||
_hardal__subcmd__dlq__subcmd__help_commands() {
    local commands; commands=(
'list:List dead letters, one line each (id, destination, time, ending, first reason)' \
'show:Print one dead letter (its event and every reason) as JSON' \
'replay:Put dead letters back in line for their destination' \
'purge:Delete dead letters for good' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hardal dlq help commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__help__subcmd__help_commands] )) ||
_hardal__subcmd__dlq__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq help help commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__help__subcmd__list_commands] )) ||
_hardal__subcmd__dlq__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq help list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__help__subcmd__purge_commands] )) ||
_hardal__subcmd__dlq__subcmd__help__subcmd__purge_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq help purge commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__help__subcmd__replay_commands] )) ||
_hardal__subcmd__dlq__subcmd__help__subcmd__replay_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq help replay commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__help__subcmd__show_commands] )) ||
_hardal__subcmd__dlq__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq help show commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__list_commands] )) ||
_hardal__subcmd__dlq__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__purge_commands] )) ||
_hardal__subcmd__dlq__subcmd__purge_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq purge commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__replay_commands] )) ||
_hardal__subcmd__dlq__subcmd__replay_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq replay commands' commands "$@"
}
(( $+functions[_hardal__subcmd__dlq__subcmd__show_commands] )) ||
_hardal__subcmd__dlq__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'hardal dlq show commands' commands "$@"
}
(( $+functions[_hardal__subcmd__forget_commands] )) ||
_hardal__subcmd__forget_commands() {
    local commands; commands=()
    _describe -t commands 'hardal forget commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help_commands] )) ||
_hardal__subcmd__help_commands() {
    local commands; commands=(
'validate:Check a configuration\: schema, environment variables, templates. Exit 0 when valid' \
'render:Print the request body each destination would send for each event, one per line. Nothing is sent' \
'send:Deliver a file of events (a backfill) to every destination, with progress and a summary. Running the same command again after an interruption continues where it stopped' \
'serve:Run the service\: take events over HTTP (\`POST /v1/events\`), keep them in the backlog, and deliver them to every destination; \`/healthz\`, \`/readyz\` and \`/metrics\` for operators' \
'dlq:The dead letters of \`hardal serve\`'\''s backlog\: list, show, replay or purge them (also while the service runs)' \
'forget:Erase a user\: suppress their events from now on, remove those waiting in the backlog and its dead letters, and ask each destination to delete them. Through the running \`hardal serve\` that owns the spool (with the first of \`server.privacy_tokens\`), else here. Prints the job'\''s audit record (JSON)' \
'privacy:The audit records of erasures\: when, which destinations confirmed, which failed and why; a digest of the identifiers, never the identifiers. JSON lines' \
'tap:Watch a running \`hardal serve\`\: each event as received, each destination'\''s record, and each verdict, as they happen. The token is read from HARDAL_TAP_TOKEN (one of the configuration'\''s \`server.tap.auth_tokens\`)' \
'presets:Print the built-in mappings (presets) of a destination kind' \
'list:List the destination kinds this binary knows' \
'schema:Print the JSON Schema of the configuration file, or of one destination kind' \
'completions:Print the completion script of a shell' \
'man:Write the man pages into a directory' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hardal help commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__completions_commands] )) ||
_hardal__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help completions commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__dlq_commands] )) ||
_hardal__subcmd__help__subcmd__dlq_commands() {
    local commands; commands=(
'list:List dead letters, one line each (id, destination, time, ending, first reason)' \
'show:Print one dead letter (its event and every reason) as JSON' \
'replay:Put dead letters back in line for their destination' \
'purge:Delete dead letters for good' \
    )
    _describe -t commands 'hardal help dlq commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__dlq__subcmd__list_commands] )) ||
_hardal__subcmd__help__subcmd__dlq__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help dlq list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__dlq__subcmd__purge_commands] )) ||
_hardal__subcmd__help__subcmd__dlq__subcmd__purge_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help dlq purge commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__dlq__subcmd__replay_commands] )) ||
_hardal__subcmd__help__subcmd__dlq__subcmd__replay_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help dlq replay commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__dlq__subcmd__show_commands] )) ||
_hardal__subcmd__help__subcmd__dlq__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help dlq show commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__forget_commands] )) ||
_hardal__subcmd__help__subcmd__forget_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help forget commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__help_commands] )) ||
_hardal__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help help commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__list_commands] )) ||
_hardal__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__man_commands] )) ||
_hardal__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help man commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__presets_commands] )) ||
_hardal__subcmd__help__subcmd__presets_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help presets commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__privacy_commands] )) ||
_hardal__subcmd__help__subcmd__privacy_commands() {
    local commands; commands=(
'list:Every erasure job, oldest first' \
'show:One erasure job' \
    )
    _describe -t commands 'hardal help privacy commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__privacy__subcmd__list_commands] )) ||
_hardal__subcmd__help__subcmd__privacy__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help privacy list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__privacy__subcmd__show_commands] )) ||
_hardal__subcmd__help__subcmd__privacy__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help privacy show commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__render_commands] )) ||
_hardal__subcmd__help__subcmd__render_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help render commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__schema_commands] )) ||
_hardal__subcmd__help__subcmd__schema_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help schema commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__send_commands] )) ||
_hardal__subcmd__help__subcmd__send_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help send commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__serve_commands] )) ||
_hardal__subcmd__help__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help serve commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__tap_commands] )) ||
_hardal__subcmd__help__subcmd__tap_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help tap commands' commands "$@"
}
(( $+functions[_hardal__subcmd__help__subcmd__validate_commands] )) ||
_hardal__subcmd__help__subcmd__validate_commands() {
    local commands; commands=()
    _describe -t commands 'hardal help validate commands' commands "$@"
}
(( $+functions[_hardal__subcmd__list_commands] )) ||
_hardal__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__man_commands] )) ||
_hardal__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'hardal man commands' commands "$@"
}
(( $+functions[_hardal__subcmd__presets_commands] )) ||
_hardal__subcmd__presets_commands() {
    local commands; commands=()
    _describe -t commands 'hardal presets commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy_commands] )) ||
_hardal__subcmd__privacy_commands() {
    local commands; commands=(
'list:Every erasure job, oldest first' \
'show:One erasure job' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hardal privacy commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy__subcmd__help_commands] )) ||
_hardal__subcmd__privacy__subcmd__help_commands() {
    local commands; commands=(
'list:Every erasure job, oldest first' \
'show:One erasure job' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hardal privacy help commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy__subcmd__help__subcmd__help_commands] )) ||
_hardal__subcmd__privacy__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'hardal privacy help help commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy__subcmd__help__subcmd__list_commands] )) ||
_hardal__subcmd__privacy__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal privacy help list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy__subcmd__help__subcmd__show_commands] )) ||
_hardal__subcmd__privacy__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'hardal privacy help show commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy__subcmd__list_commands] )) ||
_hardal__subcmd__privacy__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'hardal privacy list commands' commands "$@"
}
(( $+functions[_hardal__subcmd__privacy__subcmd__show_commands] )) ||
_hardal__subcmd__privacy__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'hardal privacy show commands' commands "$@"
}
(( $+functions[_hardal__subcmd__render_commands] )) ||
_hardal__subcmd__render_commands() {
    local commands; commands=()
    _describe -t commands 'hardal render commands' commands "$@"
}
(( $+functions[_hardal__subcmd__schema_commands] )) ||
_hardal__subcmd__schema_commands() {
    local commands; commands=()
    _describe -t commands 'hardal schema commands' commands "$@"
}
(( $+functions[_hardal__subcmd__send_commands] )) ||
_hardal__subcmd__send_commands() {
    local commands; commands=()
    _describe -t commands 'hardal send commands' commands "$@"
}
(( $+functions[_hardal__subcmd__serve_commands] )) ||
_hardal__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'hardal serve commands' commands "$@"
}
(( $+functions[_hardal__subcmd__tap_commands] )) ||
_hardal__subcmd__tap_commands() {
    local commands; commands=()
    _describe -t commands 'hardal tap commands' commands "$@"
}
(( $+functions[_hardal__subcmd__validate_commands] )) ||
_hardal__subcmd__validate_commands() {
    local commands; commands=()
    _describe -t commands 'hardal validate commands' commands "$@"
}

if [ "$funcstack[1]" = "_hardal" ]; then
    _hardal "$@"
else
    compdef _hardal hardal
fi
