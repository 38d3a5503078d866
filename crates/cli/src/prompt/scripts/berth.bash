# bash completion for berth                                    -*- shell-script -*-
#
# Load it into this shell:   source <(berth completion bash)
# or for every shell:        berth completion bash > /usr/share/bash-completion/completions/berth
#
# Every candidate comes from `berth __complete WORD...`, which reads berth's own command
# definitions and, for names (containers, images, networks, volumes, compose services), asks
# the daemon once with a short timeout. It prints nothing when the daemon is down, and never
# starts it.

# Rebuilds the words up to the cursor, joining what bash split at ':' and '=' (they are in
# COMP_WORDBREAKS), so that `container:NAME` and `--flag=value` reach berth whole.
__berth_words() {
    words=() cword=0
    if [[ -z ${COMP_LINE-} ]]; then
        words=("${COMP_WORDS[@]:0:COMP_CWORD+1}")
        cword=$COMP_CWORD
        return
    fi
    local line=${COMP_LINE:0:COMP_POINT} word rest i spaced
    for ((i = 0; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        rest=${line#"${line%%[![:space:]]*}"}
        spaced=$(( ${#rest} < ${#line} ))
        line=${rest#"$word"}
        if ((i > 0 && !spaced)) && [[ $word == [:=]* || ${words[-1]} == *[:=] ]]; then
            words[-1]+=$word
        else
            words+=("$word")
        fi
    done
    cword=$((${#words[@]} - 1))
}

_berth() {
    local words cword cur prefix prog out line directive=""
    local -a lines
    __berth_words
    cur=${words[cword]}
    # What readline replaces is the part after the last ':' or '='.
    prefix=""
    if [[ $cur == *[:=]* && $COMP_WORDBREAKS == *[:=]* ]]; then
        prefix=${cur%"${cur##*[:=]}"}
    fi
    prog=${words[0]}
    [[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
    out=$("$prog" __complete "${words[@]:1:cword}" 2>/dev/null) || return 0
    COMPREPLY=()
    mapfile -t lines <<<"$out"
    for line in "${lines[@]}"; do
        [[ -z $line ]] && continue
        if [[ $line == :* ]]; then
            directive=${line#:}
            continue
        fi
        line=${line%%$'\t'*}
        COMPREPLY+=("${line#"$prefix"}")
    done
    if [[ $directive == *nospace* ]]; then
        compopt -o nospace 2>/dev/null
    fi
    if [[ $directive == *files* ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "${cur#"$prefix"}")
    elif [[ $directive == *dirs* ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "${cur#"$prefix"}")
    fi
    return 0
}

complete -F _berth berth
