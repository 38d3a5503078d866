# fish completion for berth.
# Load it into this shell:  berth completion fish | source
# or for every shell:       berth completion fish > ~/.config/fish/completions/berth.fish
#
# Every candidate comes from `berth __complete WORD...`, which reads berth's own command
# definitions and, for names, asks the daemon once with a short timeout. It prints nothing
# when the daemon is down, and never starts it.

function __berth_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    # Silent when berth is not where the line says (fish reports an unknown command).
    command -q -- $tokens[1]; or return
    set -l out ($tokens[1] __complete $tokens[2..-1] $current 2>/dev/null)
    or return
    set -l directive ''
    for line in $out
        if string match -q -- ':*' $line
            set directive (string sub -s 2 -- $line)
            continue
        end
        printf '%s\n' $line
    end
    if string match -q -- '*files*' $directive
        __fish_complete_path $current
    else if string match -q -- '*dirs*' $directive
        __fish_complete_directories $current
    end
end

complete -c berth -f -a '(__berth_complete)'
