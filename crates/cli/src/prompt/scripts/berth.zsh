#compdef berth
#
# zsh completion for berth.
# Load it into this shell (after compinit):  source <(berth completion zsh)
# or for every shell:  berth completion zsh > "${fpath[1]}/_berth"
#
# Every candidate comes from `berth __complete WORD...`, which reads berth's own command
# definitions and, for names, asks the daemon once with a short timeout. It prints nothing
# when the daemon is down, and never starts it.

_berth() {
    local out line directive="" value help
    local -a described plain
    out=$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    for line in "${(@f)out}"; do
        if [[ $line == :* ]]; then
            directive=${line#:}
            continue
        fi
        value=${line%%$'\t'*}
        plain+=("$value")
        if [[ $line == *$'\t'* ]]; then
            help=${line#*$'\t'}
            described+=("${value//:/\\:}:$help")
        else
            described+=("${value//:/\\:}")
        fi
    done
    local ret=1
    if (( ${#plain} )); then
        if [[ $directive == *nospace* ]]; then
            _describe -t berth 'berth' described -S '' && ret=0
        else
            _describe -t berth 'berth' described && ret=0
        fi
    fi
    if [[ $directive == *files* ]]; then
        _files && ret=0
    elif [[ $directive == *dirs* ]]; then
        _files -/ && ret=0
    fi
    return ret
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _berth "$@"
else
    compdef _berth berth
fi
