# bash completion for ferry(1): commands, subcommands, flags, the names and values of
# -o options (a comma-separated list), datastore names and ferry mounts.
# Installed as /usr/share/bash-completion/completions/ferry; needs no other file.

_ferry_mount_options='ro rw kind= conflict= attr_timeout= entry_timeout= negative_timeout=
	account_key_file= sas_file= bearer_token_file= ca_file= allow_http allow_other nonempty uid= gid=
	umask= workers= timeout= log_level= log_file= debug block_size= cache_mem= cache_dir= cache_size=
	prefetch_window='
_ferry_data_options='account_key_file= sas_file= bearer_token_file= ca_file= allow_http
	workers= timeout= block_size= log_level= kind='

# COMPREPLY: the words of $1 that start with $2, each after prefix $3.
_ferry_reply()
{
	local IFS=$'\n'
	COMPREPLY=($(IFS=$' \t\n'; compgen -W "$1" -P "$3" -- "$2"))
}

# COMPREPLY: files (or with $3 = -d, folders) that start with $1, each after prefix $2.
_ferry_files()
{
	local IFS=$'\n'
	COMPREPLY=($(compgen "${3:--f}" -P "$2" -- "$1"))
	compopt -o filenames 2>/dev/null
}

_ferry_datastores()
{
	command -v "$1" >/dev/null || return 0
	"$1" datastore list 2>/dev/null | {
		local name rest
		read -r rest # the heading
		while read -r name rest; do printf '%s\n' "$name"; done
	}
}

# The -o list being typed: $1 the option names, $2 the list as typed, $3 the part of it
# that bash replaces (it splits words at '=').
_ferry_option_list()
{
	local item=${2##*,} prefix values
	if [[ $item == *=* ]]; then
		local name=${item%%=*} value=${item#*=}
		prefix=${3%"$value"}
		case $name in
		kind) values='blob file' ;;
		conflict) values='fail overwrite' ;;
		log_level) values='error warn info debug' ;;
		*_file | cache_dir) _ferry_files "$value" "$prefix"; return ;;
		*) return ;;
		esac
		_ferry_reply "$values" "$value" "$prefix"
		return
	fi
	prefix=${3%"$item"}
	_ferry_reply "$1" "$item" "$prefix"
	[[ ${COMPREPLY[*]} == *= ]] && compopt -o nospace 2>/dev/null
}

_ferry()
{
	local left=${COMP_LINE:0:COMP_POINT}
	local arg=${left##*[[:space:]]}
	local cur=${COMP_WORDS[COMP_CWORD]}
	local -a w
	read -ra w <<<"${left%"$arg"}"
	local n=${#w[@]}
	local prev=${w[n - 1]} cmd=${w[1]} at=2 flags takes i pos=0
	COMPREPLY=()
	if ((n == 1)); then
		_ferry_reply 'mount unmount status run job datastore cp ls --help --version' "$arg"
		return
	fi
	case $cmd in
	mount)
		if [[ ${w[2]} == list ]]; then
			flags='--help'
		else
			flags='-o --options -f --foreground --help' takes='-o --options'
		fi ;;
	unmount | umount)
		flags='-z --lazy --all --help' ;;
	status)
		flags='--json --prometheus --help' ;;
	run)
		flags='--engine --hostfile --shared-temp --help' takes='--engine --hostfile --shared-temp' ;;
	cp)
		flags='-r -R --recursive -q --quiet -o --options --help' takes='-o --options' ;;
	ls)
		flags='-l --long -R -r --recursive -o --options --help' takes='-o --options' ;;
	job | datastore)
		if ((n == 2)); then
			if [[ $cmd == job ]]; then
				_ferry_reply 'list show logs download --help' "$arg"
			else
				_ferry_reply 'add list show remove --help' "$arg"
			fi
			return
		fi
		at=3
		case $cmd/${w[2]} in
		job/list) flags='--experiment --help' takes='--experiment' ;;
		job/show) flags='--help' ;;
		job/logs) flags='--rank -f --follow --help' takes='--rank' ;;
		job/download)
			flags='--all --output -o --download-path --help'
			takes='--output -o --download-path' ;;
		datastore/add)
			flags='--account --endpoint --container --type --share --prefix
				--account-key-file --sas-file --credential --create-container --force --help'
			takes='--account --endpoint --container --type --share --prefix
				--account-key-file --sas-file --credential' ;;
		datastore/*) flags='--help' ;;
		*) return ;;
		esac
		;;
	*) return ;;
	esac

	# The value of a flag
	if [[ " "$takes" " == *[[:space:]]"$prev"[[:space:]]* ]]; then
		case $cmd/$prev in
		mount/-o | mount/--options) _ferry_option_list "$_ferry_mount_options" "$arg" "$cur" ;;
		cp/-o | cp/--options | ls/-o | ls/--options)
			_ferry_option_list "$_ferry_data_options" "$arg" "$cur" ;;
		run/--engine) _ferry_reply 'local slurm mpi' "$arg" ;;
		run/--hostfile | datastore/--account-key-file | datastore/--sas-file)
			_ferry_files "$arg" ;;
		run/--shared-temp | job/-o | job/--download-path) _ferry_files "$arg" "" -d ;;
		datastore/--type) _ferry_reply 'azure_blob azure_file' "$arg" ;;
		datastore/--credential) _ferry_reply 'env none account_key sas emulator' "$arg" ;;
		esac
		return
	fi
	if [[ $arg == -* ]]; then
		_ferry_reply "$flags" "$arg"
		return
	fi
	# The how-manyth operand this is
	for ((i = at; i < n; i++)); do
		if [[ " "$takes" " == *[[:space:]]"${w[i]}"[[:space:]]* ]]; then
			((i++))
		elif [[ ${w[i]} != -* ]]; then
			((pos++))
		fi
	done
	case $cmd/${w[2]}/$pos in
	mount/*/0) _ferry_reply "list --help $(_ferry_datastores "${w[0]}")" "$arg" ;;
	mount/*/1) _ferry_files "$arg" "" -d ;;
	mount/list/*) ;;
	unmount/*/0 | umount/*/0 | status/*/0)
		_ferry_reply "$(awk '$3 == "fuse.ferry" { print $2 }' /proc/self/mounts 2>/dev/null)" "$arg"
		((${#COMPREPLY[@]})) || _ferry_files "$arg" "" -d ;;
	run/*/0 | cp/*/0 | cp/*/1) _ferry_files "$arg" ;;
	datastore/show/0 | datastore/remove/0) _ferry_reply "$(_ferry_datastores "${w[0]}")" "$arg" ;;
	esac
}
complete -F _ferry ferry
